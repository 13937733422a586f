"""`mmgraph export`: GraphStorm tables + config, the DGL dicts, and the Parquet round trip."""
from __future__ import annotations

import json
import sys
import types

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from mmgraph.data.builder import build_graph
from mmgraph.data.export_dgl import dgl_graph_data, export_dgl
from mmgraph.data.export_graphstorm import export_graphstorm
from mmgraph.data.export_tables import read_export
from mmgraph.data.graph_io import load_graph
from mmgraph.errors import InputError

FILES = {"items.csv": "id,kind,size\na,x,1\nb,y,\nc,,3\n", "train.txt": "a\tis\tb\nb\tis\tz\nc\tis\ta\n",
         "valid.txt": "c\tis\tb\n", "test.txt": "a\tis\tc\n"}


@pytest.fixture
def tiny(write_dataset, items_manifest):
    """4 items (z only from triples), a categorical and a numeric feature with missing rows, a split."""
    m = items_manifest(features={"kind": {"modality": "categorical", "column": "kind"},
                                 "size": {"modality": "numeric", "columns": ["size"]}})
    m["edges"] = [{"triples": {"train": "train.txt", "valid": "valid.txt", "test": "test.txt"},
                   "source_type": "item", "target_type": "item"}]
    return build_graph(write_dataset(m, FILES), device="cpu")


def assert_same_graph(read, graph) -> None:
    """Same node types, ids, features and masks, edge types, edge_index and split."""
    assert sorted(read.node_types) == sorted(graph.node_types)
    assert sorted(read.edge_types) == sorted(graph.edge_types)
    assert read.mmgraph["ids"] == graph.mmgraph["ids"]
    for t in graph.node_types:
        assert read[t].num_nodes == graph[t].num_nodes
        for name in graph.mmgraph["features"][t]:
            assert torch.equal(read[t][name], graph[t][name]), (t, name)
            assert torch.equal(read[t][f"{name}_mask"], graph[t][f"{name}_mask"]), (t, name)
    for et in graph.edge_types:
        assert torch.equal(read[et].edge_index, graph[et].edge_index), et
        assert ("split" in read[et]) == ("split" in graph[et])
        if "split" in graph[et]:
            assert torch.equal(read[et].split, graph[et].split), et


def test_graphstorm_export_round_trips(tiny, tmp_path):
    out = export_graphstorm(tiny, tmp_path / "gs")
    read = read_export(out)
    assert_same_graph(read, tiny)
    assert read.mmgraph == tiny.mmgraph


def test_missing_null_leaves_missing_features_null_not_zeros(tiny, tmp_path):
    out = export_graphstorm(tiny, tmp_path / "gs", missing="null")
    table = pq.read_table(out / "nodes" / "item" / "part-00000.parquet")
    assert table.column("node_id").to_pylist() == ["a", "b", "c", "z"]
    sizes = table.column("size").to_pylist()
    assert sizes[1] is None and sizes[3] is None and sizes[0] is not None
    kinds = table.column("kind").to_pylist()
    assert kinds[2] is None and kinds[3] is None
    assert kinds[0] == pytest.approx(tiny["item"].kind[0].tolist())


def test_default_missing_as_zeros_adds_a_mask_column_and_still_round_trips(tiny, tmp_path):
    out = export_graphstorm(tiny, tmp_path / "gs")  # zeros by default: gconstruct rejects null rows
    table = pq.read_table(out / "nodes" / "item" / "part-00000.parquet")
    assert table.column("size").to_pylist()[1] == [0.0]
    assert table.column("size_mask").to_pylist() == [1, 0, 1, 0]
    config = json.loads((out / "config.json").read_text())
    names = [f["feature_name"] for f in config["nodes"][0]["features"]]
    assert names == ["kind", "kind_mask", "size", "size_mask"]
    assert_same_graph(read_export(out), tiny)


def test_graphstorm_config_follows_gconstruct_schema(tiny, tmp_path):
    out = export_graphstorm(tiny, tmp_path / "gs", missing="null")
    config = json.loads((out / "config.json").read_text())
    assert config["version"] == "gconstruct-v0.1"
    (node,) = config["nodes"]
    assert node["node_type"] == "item" and node["format"] == {"name": "parquet"}
    assert node["node_id_col"] == "node_id" and (out / node["files"][0]).is_file()
    assert [f["feature_col"] for f in node["features"]] == ["kind", "size"]
    (edge,) = config["edges"]
    assert edge["relation"] == ["item", "is", "item"]
    assert (edge["source_id_col"], edge["dest_id_col"]) == ("src_id", "dst_id")
    (label,) = edge["labels"]
    assert label["task_type"] == "link_prediction"
    custom = label["custom_split_filenames"]
    assert custom["column"] == ["src_id", "dst_id"]
    pairs = {}
    for key in ("train", "valid", "test"):
        table = pq.read_table(out / custom[key])
        pairs[key] = list(zip(*(table.column(c).to_pylist() for c in custom["column"])))
    assert pairs == {"train": [("a", "b"), ("b", "z"), ("c", "a")], "valid": [("c", "b")],
                     "test": [("a", "c")]}
    edges = pq.read_table(out / edge["files"][0])
    assert edges.column("split").to_pylist() == ["train", "train", "train", "valid", "test"]
    readme = (out / "README.txt").read_text()
    assert "graphstorm.gconstruct.construct_graph --conf-file config.json" in readme
    assert "--missing zeros" in readme  # kind and size have missing rows


def test_export_is_atomic_and_needs_force(tiny, tmp_path):
    out = export_graphstorm(tiny, tmp_path / "gs")
    with pytest.raises(InputError, match="exists; pass --force"):
        export_graphstorm(tiny, out)
    with pytest.raises(InputError, match="--missing"):
        export_graphstorm(tiny, out, force=True, missing="nan")
    assert (out / "config.json").is_file()  # the failed export left the old folder as it was
    export_graphstorm(tiny, out, force=True)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_read_export_names_the_broken_file(tiny, tmp_path):
    with pytest.raises(InputError, match="mmgraph.json: not found"):
        read_export(tmp_path)
    out = export_graphstorm(tiny, tmp_path / "gs")
    edges = out / "edges" / "item___is___item" / "part-00000.parquet"
    table = pq.read_table(edges)
    pq.write_table(table.set_column(0, "src_id", pa.array(["a", "b", "c", "c", "nobody"])), edges)
    with pytest.raises(InputError, match=r"item___is___item.*src_id.*'nobody'"):
        read_export(out)


def test_real_graph_round_trips(demo_graph_dir, tmp_path):
    graph = load_graph(demo_graph_dir)
    out = export_graphstorm(graph, tmp_path / "gs")
    read = read_export(out)
    assert_same_graph(read, graph)
    assert read.mmgraph == graph.mmgraph
    assert sum(int(read[t].num_nodes) for t in read.node_types) == sum(int(graph[t].num_nodes)
                                                                      for t in graph.node_types)


def test_dgl_graph_data_holds_what_dgl_takes(tiny):
    data = dgl_graph_data(tiny)
    assert data.num_nodes == {"item": 4}
    src, dst = data.edges[("item", "is", "item")]
    assert src.tolist() == [0, 1, 2, 2, 0] and dst.tolist() == [1, 3, 0, 1, 2]
    assert data.edata[("item", "is", "item")]["split"].tolist() == [0, 0, 0, 1, 2]
    assert set(data.ndata["item"]) == {"kind", "kind_mask", "size", "size_mask"}
    assert data.ndata["item"]["size_mask"].tolist() == [True, False, True, False]
    assert torch.equal(data.ndata["item"]["kind"], tiny["item"].kind)


def test_dgl_export_without_dgl_names_the_package(tiny, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "dgl", None)  # `import dgl` raises ImportError
    with pytest.raises(InputError, match=r"needs the `dgl` package.*pip.*--format graphstorm"):
        export_dgl(tiny, tmp_path / "dgl")
    assert not (tmp_path / "dgl").exists()


def test_dgl_export_makes_the_dgl_calls(tiny, tmp_path, monkeypatch):
    """A stand-in `dgl` module records what export_dgl hands to heterograph / ndata / save_graphs."""
    calls = {}

    class Frames(dict):
        def __missing__(self, key):
            self[key] = types.SimpleNamespace(data={})
            return self[key]

    def heterograph(edges, num_nodes_dict):
        calls["edges"], calls["num_nodes"] = edges, num_nodes_dict
        return types.SimpleNamespace(nodes=Frames(), edges=Frames())

    def save_graphs(path, graphs):
        calls["path"], (calls["graph"],) = path, graphs
        torch.save("graph", path)

    fake = types.SimpleNamespace(heterograph=heterograph, save_graphs=save_graphs)
    monkeypatch.setitem(sys.modules, "dgl", fake)
    out = export_dgl(tiny, tmp_path / "dgl")
    assert calls["num_nodes"] == {"item": 4}
    assert calls["edges"][("item", "is", "item")][0].tolist() == [0, 1, 2, 2, 0]
    g = calls["graph"]
    assert g.nodes["item"].data["size_mask"].tolist() == [True, False, True, False]
    assert g.edges[("item", "is", "item")].data["split"].tolist() == [0, 0, 0, 1, 2]
    assert (out / "graph.dgl").is_file() and calls["path"].endswith("graph.dgl")
    assert (out / "ids" / "item.txt").read_text().split() == ["a", "b", "c", "z"]
