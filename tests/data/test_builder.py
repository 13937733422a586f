"""build_graph on tabular features (no media): ids, edges, splits, triples, features, kNN, report."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mmgraph.data.builder import build_graph
from mmgraph.encoders import encode_values, encoder_from_spec
from mmgraph.errors import InputError

ITEMS = "id,age,height,kind,vec\na,10,1.5,x,1 0\nb,,2.5,y,0 1\nc,30,,x,\nd,,,,1 1\n"


def _build(write_dataset, manifest, files, **kwargs):
    return build_graph(write_dataset(manifest, files), device="cpu", num_workers=0, **kwargs)


def test_numeric_categorical_vector_features(write_dataset, tmp_path, items_manifest):
    vecs = np.array([[1, 2, 3], [np.nan] * 3, [0, 0, 1], [4, 5, 6]], dtype=np.float32)
    np.save(tmp_path / "vecs.npy", vecs)
    manifest = items_manifest(features={
        "size": {"modality": "numeric", "columns": ["age", "height"]},
        "kind": {"modality": "categorical", "column": "kind"},
        "vec": {"modality": "vector", "column": "vec"},
        "pre": {"modality": "vector", "npy": "vecs.npy"},
    })
    g, report = _build(write_dataset, manifest, {"items.csv": ITEMS}, return_report=True)
    item = g["item"]
    assert item.num_nodes == 4
    # numeric: standardised per column, empty cells take the mean, an all-empty row is missing
    assert item.size_mask.tolist() == [True, True, True, False]
    assert torch.allclose(item.size[:3], torch.tensor([[-1.0, -1.0], [0.0, 1.0], [1.0, 0.0]]))
    assert item.size[3].abs().sum() == 0
    # categorical: one-hot over the sorted vocabulary x, y (+ unseen slot)
    assert item.kind.tolist() == [[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 0]]
    assert item.kind_mask.tolist() == [True, True, True, False]
    assert item.vec.tolist() == [[1, 0], [0, 1], [0, 0], [1, 1]] and item.vec_mask.tolist() == [1, 1, 0, 1]
    assert item.pre_mask.tolist() == [True, False, True, True] and item.pre[3].tolist() == [4, 5, 6]
    for name in ("size", "kind", "vec", "pre"):
        assert item[name].dtype == torch.float32 and item[name + "_mask"].dtype == torch.bool
    features = report["nodes"]["item"]["features"]
    assert {n: (f["dim"], f["missing"], f["bad"]) for n, f in features.items()} == {
        "size": (2, 1, 0), "kind": (3, 1, 0), "vec": (2, 1, 0), "pre": (3, 1, 0)}
    assert g.mmgraph["source"]["item"] == {"id": "id", "columns": {"size": ["age", "height"], "kind": "kind",
                                                                   "vec": "vec", "pre": None}}


def test_spec_rebuilds_the_same_encoder(write_dataset, items_manifest):
    manifest = items_manifest(features={"size": {"modality": "numeric", "columns": ["age", "height"]},
                                        "kind": {"modality": "categorical", "column": "kind"}})
    g = _build(write_dataset, manifest, {"items.csv": ITEMS})
    size = encoder_from_spec(g.mmgraph["features"]["item"]["size"]["spec"])
    assert torch.allclose(encode_values(size, [[10.0, 1.5]], num_workers=0).x, g["item"].size[:1])
    kind = encoder_from_spec(g.mmgraph["features"]["item"]["kind"]["spec"])
    assert encode_values(kind, ["y", "new"], num_workers=0).x.tolist() == [[0, 1, 0], [0, 0, 1]]


def test_duplicate_and_empty_ids(write_dataset, items_manifest):
    with pytest.raises(InputError, match=r"items\.csv: duplicate id 'a' in column 'id' \(rows 1 and 3\)"):
        _build(write_dataset, items_manifest(), {"items.csv": "id\na\nb\na\n"})
    with pytest.raises(InputError, match=r"items\.csv: row 2: empty id in column 'id'"):
        _build(write_dataset, items_manifest(), {"items.csv": "id,x\na,1\n,2\n"})


def test_missing_columns_name_the_manifest_field(write_dataset, items_manifest):
    manifest = items_manifest(id="ident")
    pattern = r"manifest\.yaml: nodes\.item\.id: .*items\.csv: no column 'ident' \(columns: id, age"
    with pytest.raises(InputError, match=pattern):
        _build(write_dataset, manifest, {"items.csv": ITEMS})
    manifest = items_manifest(features={"kind": {"modality": "categorical", "column": "knd"}})
    with pytest.raises(InputError, match=r"nodes\.item\.features\.kind\.column: .*no column 'knd'.*'kind'"):
        _build(write_dataset, manifest, {"items.csv": ITEMS})


def test_bad_numbers_and_vectors_name_table_row_and_column(write_dataset, tmp_path, items_manifest):
    num = items_manifest(features={"age": {"modality": "numeric", "column": "age"}})
    with pytest.raises(InputError, match=r"items\.csv: row 2: column 'age': not a number: 'old'"):
        _build(write_dataset, num, {"items.csv": "id,age\na,1\nb,old\n"})
    vec = items_manifest(features={"vec": {"modality": "vector", "column": "vec"}})
    with pytest.raises(InputError, match=r"items\.csv: row 3: column 'vec': vector has 3 numbers, row 1 has"):
        _build(write_dataset, vec, {"items.csv": "id,vec\na,1 2\nb,\nc,1 2 3\n"})
    np.save(tmp_path / "v.npy", np.zeros((3, 2)))
    npy = items_manifest(features={"v": {"modality": "vector", "npy": "v.npy"}})
    with pytest.raises(InputError, match=r"v\.npy: has 3 rows but table .*items\.csv has 2"):
        _build(write_dataset, npy, {"items.csv": "id\na\nb\n"})


EDGE_FILES = {
    "items.csv": "id\na\nb\nc\n",
    "users.jsonl": '{"uid": 1}\n{"uid": 2}\n',
    "likes.csv": "user,item,split\n1,a,train\n2,c,valid\n1,b,test\n",
}


def _edge_manifest(items_manifest, **edge_overrides):
    edge = {"relation": "likes", "table": "likes.csv", "source": {"type": "user", "column": "user"},
            "target": {"type": "item", "column": "item"}, "split": "split"}
    edge.update(edge_overrides)
    m = items_manifest()
    m["nodes"]["user"] = {"table": "users.jsonl", "id": "uid"}
    m["edges"] = [edge]
    return m


def test_table_edges_with_split(write_dataset, items_manifest):
    g, report = _build(write_dataset, _edge_manifest(items_manifest), EDGE_FILES, return_report=True)
    store = g["user", "likes", "item"]
    assert store.edge_index.tolist() == [[0, 1, 0], [0, 2, 1]]  # jsonl ints match csv strings
    assert store.split.tolist() == [0, 1, 2]
    assert report["edges"] == {"user|likes|item": {"count": 3, "split": {"train": 1, "valid": 1, "test": 1}}}
    g = _build(write_dataset, _edge_manifest(items_manifest, split=None), EDGE_FILES)
    assert "split" not in g["user", "likes", "item"]


def test_table_edge_errors_name_table_row_and_value(write_dataset, items_manifest):
    files = dict(EDGE_FILES, **{"likes.csv": "user,item,split\n1,a,train\n3,c,test\n"})
    with pytest.raises(InputError, match=r"likes\.csv: row 2: user '3' is not an id of node type 'user'"):
        _build(write_dataset, _edge_manifest(items_manifest), files)
    files = dict(EDGE_FILES, **{"likes.csv": "user,item,split\n1,a,train\n2,c,validation\n"})
    with pytest.raises(InputError, match=r"likes\.csv: row 2: split column 'split' holds 'validation'"):
        _build(write_dataset, _edge_manifest(items_manifest), files)
    with pytest.raises(InputError, match=r"edges\[0\]\.target\.column: .*likes\.csv: no column 'itm'"):
        m = _edge_manifest(items_manifest, target={"type": "item", "column": "itm"})
        _build(write_dataset, m, EDGE_FILES)


TRIPLES = {"items.csv": "id,kind\na,x\nb,y\n", "train.txt": "a\tis\tz\nz\tnear\tb\n\n",
           "test.txt": "b\tis\tq\n"}


def test_triples_add_featureless_nodes_and_a_type_without_table(write_dataset, items_manifest):
    m = items_manifest(features={"kind": {"modality": "categorical", "column": "kind"}})
    m["edges"] = [
        {"triples": {"train": "train.txt", "test": "test.txt"}, "source_type": "item", "target_type": "item"},
        {"triples": "test.txt", "source_type": "item", "target_type": "tag"},
    ]
    g, report = _build(write_dataset, m, TRIPLES, return_report=True)
    assert g.mmgraph["ids"] == {"item": ["a", "b", "z", "q"], "tag": ["q"]}
    assert g["item"].kind_mask.tolist() == [True, True, False, False]
    assert g["item"].kind[2:].abs().sum() == 0
    assert g["item", "is", "item"].edge_index.tolist() == [[0, 1], [2, 3]]
    assert g["item", "is", "item"].split.tolist() == [0, 2]
    assert g["item", "near", "item"].edge_index.tolist() == [[2], [1]]
    assert g["tag"].num_nodes == 1 and "split" not in g["item", "is", "tag"]
    assert report["nodes"]["item"]["count"] == 4 and report["nodes"]["item"]["featureless"] == 2
    assert report["nodes"]["item"]["features"]["kind"]["missing"] == 2
    assert report["nodes"]["tag"] == {"count": 1, "featureless": 1, "features": {}}
    assert g.mmgraph["source"]["tag"] == {"id": None, "columns": {}}


def test_table_edges_may_not_use_ids_only_triples_know(write_dataset, items_manifest):
    m = items_manifest()
    m["edges"] = [{"triples": {"train": "train.txt"}, "source_type": "item", "target_type": "item"},
                  {"relation": "rel", "table": "rel.csv", "source": {"type": "item", "column": "s"},
                   "target": {"type": "item", "column": "t"}}]
    files = dict(TRIPLES, **{"rel.csv": "s,t\na,z\n"})
    with pytest.raises(InputError, match=r"rel\.csv: row 1: t 'z' is not an id of node type 'item'"):
        _build(write_dataset, m, files)


def test_bad_triples_and_colliding_edge_types(write_dataset, items_manifest):
    m = items_manifest()
    m["edges"] = [{"triples": {"train": "train.txt"}, "source_type": "item", "target_type": "item"}]
    with pytest.raises(InputError, match=r"train\.txt: line 2: expected head<TAB>relation<TAB>tail"):
        _build(write_dataset, m, dict(TRIPLES, **{"train.txt": "a\tis\tb\na is b\n"}))
    m["edges"].append({"relation": "is", "table": "items.csv", "source": {"type": "item", "column": "id"},
                       "target": {"type": "item", "column": "id"}})
    with pytest.raises(InputError, match=r"edges\[1\]: edge type item\|is\|item is already defined"):
        _build(write_dataset, m, TRIPLES)


def test_knn_relation_and_dict_manifest(write_dataset, tmp_path, items_manifest):
    files = {"items.csv": "id,vec\na,1 0\nb,0.9 0.1\nc,0 1\nd,\n"}
    write_dataset(items_manifest(), files)
    m = items_manifest(features={"vec": {"modality": "vector", "column": "vec"}},
                       knn={"feature": "vec", "k": 1})
    g, report = build_graph(m, root=tmp_path, device="cpu", return_report=True)
    assert g["item", "similar_vec", "item"].edge_index.tolist() == [[0, 1, 2], [1, 0, 1]]
    assert report["edges"]["item|similar_vec|item"] == {"count": 3}
    assert g.mmgraph["knn"] == [{"relation": ["item", "similar_vec", "item"], "feature": "vec", "k": 1,
                                 "metric": "cosine"}]
    assert set(report["timings"]) >= {"read tables", "read edges", "encode item.vec", "knn", "assemble"}


def test_default_knn_plan_one_relation_per_media_feature():
    from types import SimpleNamespace

    from mmgraph.data.builder import DEFAULT_KNN_K, knn_plan
    from mmgraph.data.manifest import FeatureSpec, KnnSpec, NodeSpec

    def node(features, **kw):
        return NodeSpec(table=Path("t.csv"), id="id", features=features, **kw)

    image, audio = FeatureSpec(modality="image", column="f"), FeatureSpec(modality="audio", column="p")
    text = FeatureSpec(modality="text", column="w")
    manifest = SimpleNamespace(nodes={
        "clip": node({"sound": audio, "name": text}),              # audio and text: yes
        "image": node({"picture": image}, auto_knn=False),         # `knn: false`
        "photo": node({"a": image}, knn=KnnSpec(feature="a", k=3)),  # the manifest's own wins
        "icon": node({"b": image}),                                # too few nodes
    })
    plan = knn_plan(manifest, {"clip": 100, "image": 100, "photo": 100, "icon": 5})
    assert plan == [("clip", "sound", DEFAULT_KNN_K), ("clip", "name", DEFAULT_KNN_K), ("photo", "a", 3)]
    # too many nodes for an exact default kNN: left out; the manifest's own `knn:` still builds
    from mmgraph.data.builder import AUTO_KNN_MAX_NODES

    many = AUTO_KNN_MAX_NODES + 1
    assert knn_plan(manifest, {"clip": many, "image": 100, "photo": many, "icon": 5}) == [("photo", "a", 3)]
