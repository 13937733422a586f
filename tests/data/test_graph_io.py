"""GRAPH_DIR round trip (CONTRACT.md section 3), atomic output, clear load errors, edge keys."""
from __future__ import annotations

import json
import re

import pytest
import torch

from mmgraph.data.builder import build_graph
from mmgraph.data.graph import edge_key, graph_summary, parse_edge_key
from mmgraph.data.graph_io import load_graph, load_report, write_graph
from mmgraph.errors import InputError

FILES = {"items.csv": "id,kind\na,x\nb,y\nc,\n", "train.txt": "a\tis\tb\nb\tis\tz\n",
         "valid.txt": "c\tis\ta\n"}


@pytest.fixture
def built(write_dataset, items_manifest):
    m = items_manifest(features={"kind": {"modality": "categorical", "column": "kind"}})
    m["edges"] = [{"triples": {"train": "train.txt", "valid": "valid.txt"}, "source_type": "item",
                   "target_type": "item"}]
    return build_graph(write_dataset(m, FILES), device="cpu", return_report=True)


def test_write_and_load_round_trip(built, tmp_path):
    graph, report = built
    out = write_graph(graph, report, tmp_path / "graph")
    assert sorted(p.name for p in out.iterdir()) == ["build.json", "graph.pt", "ids"]
    assert (out / "ids" / "item.txt").read_text(encoding="utf-8").splitlines() == ["a", "b", "c", "z"]
    loaded = load_graph(out)
    item = loaded["item"]
    assert item.num_nodes == 4
    assert item.kind.dtype == torch.float32 and item.kind.shape == (4, 3)
    assert item.kind_mask.dtype == torch.bool and item.kind_mask.tolist() == [True, True, False, False]
    assert torch.equal(item.kind, graph["item"].kind)
    rel = loaded["item", "is", "item"]
    assert rel.edge_index.dtype == torch.long and rel.edge_index.tolist() == [[0, 1, 2], [1, 3, 0]]
    assert rel.split.tolist() == [0, 0, 1]
    assert loaded.mmgraph == graph.mmgraph
    written = json.loads((out / "build.json").read_text(encoding="utf-8"))
    assert written == load_report(out) == report
    assert set(written) >= {"nodes", "edges", "bad_files", "seconds"}
    kind = written["nodes"]["item"]["features"]["kind"]
    assert set(kind) == {"modality", "encoder", "dim", "missing", "bad"}
    assert written["nodes"]["item"]["count"] == 4 and written["edges"]["item|is|item"]["count"] == 3
    assert written["bad_files"] == [] and written["seconds"] >= 0


def test_existing_folder_needs_force_and_survives_a_failed_write(built, tmp_path, monkeypatch):
    graph, report = built
    out = tmp_path / "graph"
    out.mkdir()
    (out / "keep.txt").write_text("old", encoding="utf-8")
    with pytest.raises(InputError, match="output folder exists; pass --force"):
        write_graph(graph, report, out)

    def broken_save(obj, path, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        write_graph(graph, report, out, force=True)
    monkeypatch.undo()
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["graph", "items.csv", "manifest.yaml", "train.txt",
                                                         "valid.txt"]  # no temporary folder left behind
    write_graph(graph, report, out, force=True)
    assert not (out / "keep.txt").exists() and load_graph(out)["item"].num_nodes == 4


def test_failed_build_leaves_existing_graph_untouched(built, tmp_path, write_dataset, items_manifest):
    graph, report = built
    out = write_graph(graph, report, tmp_path / "graph")
    before = (out / "graph.pt").read_bytes()
    bad = write_dataset(items_manifest(), {"items.csv": "id\na\na\n"}, name="bad.yaml")
    with pytest.raises(InputError, match="duplicate id"):
        g, r = build_graph(bad, device="cpu", return_report=True)
        write_graph(g, r, out, force=True)
    assert (out / "graph.pt").read_bytes() == before


def test_load_errors_are_clear(tmp_path):
    with pytest.raises(InputError, match="graph folder not found"):
        load_graph(tmp_path / "nowhere")
    with pytest.raises(InputError, match=r"graph\.pt: not found"):
        load_graph(tmp_path)
    (tmp_path / "graph.pt").write_bytes(b"not a torch file")
    with pytest.raises(InputError, match=r"graph\.pt: cannot read the graph"):
        load_graph(tmp_path)
    torch.save(torch.zeros(2), tmp_path / "graph.pt")
    with pytest.raises(InputError, match=r"graph\.pt: not an mmgraph graph"):
        load_graph(tmp_path)
    with pytest.raises(InputError, match=r"build\.json: not found"):
        load_report(tmp_path)


def test_edge_keys_and_summary(built):
    assert edge_key(("clip", "says", "word")) == "clip|says|word"
    assert parse_edge_key("clip|says|word") == ("clip", "says", "word")
    for bad in ("clip|says", "a||b", "a|b|c|d"):
        with pytest.raises(InputError, match=re.escape("expected 'SOURCE|RELATION|TARGET'")):
            parse_edge_key(bad)
    with pytest.raises(InputError):
        edge_key(("a", "b|c", "d"))
    summary = graph_summary(built[0]).splitlines()
    assert summary[0] == "test: 1 node types, 1 edge types"
    assert "4 nodes" in summary[1] and "2/4 present" in summary[1]
    assert summary[2] == "  item|is|item: 3 edges (train 2, valid 1, test 0)"
