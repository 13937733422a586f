"""OGB link-prediction folders (CSV and binary layouts, homogeneous and heterogeneous) -> graphs."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import torch

from mmgraph.data.graph_io import load_graph
from mmgraph.data.ogb_format import import_ogb, load_ogb_linkprop
from mmgraph.errors import InputError

FEAT = np.arange(15, dtype=np.float32).reshape(5, 3) / 10


def _csv(path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, header=False, index=False, compression="gzip")


@pytest.fixture
def csv_homo(tmp_path):
    """An ogbl-citation2-like folder in OGB's CSV layout: source_node/target_node splits, .pt per split."""
    root = tmp_path / "ogbl_tiny"
    raw = root / "raw"
    _csv(raw / "edge.csv.gz", [[0, 1], [1, 2], [2, 3]])
    _csv(raw / "num-node-list.csv.gz", [[5]])
    _csv(raw / "num-edge-list.csv.gz", [[3]])
    _csv(raw / "node-feat.csv.gz", FEAT)
    split = root / "split" / "time"
    split.mkdir(parents=True)
    torch.save({"source_node": torch.tensor([0, 1, 2]), "target_node": torch.tensor([1, 2, 3])},
               split / "train.pt")
    for name, (s, t) in {"valid": (3, 4), "test": (4, 0)}.items():
        torch.save({"source_node": torch.tensor([s]), "target_node": torch.tensor([t]),
                    "target_node_neg": torch.tensor([[1, 2]])}, split / f"{name}.pt")
    return root


def test_csv_layout_is_what_ogb_reads(csv_homo):
    from ogb.io.read_graph_raw import read_csv_graph_raw

    (ogb_graph,) = read_csv_graph_raw(str(csv_homo / "raw"))
    assert ogb_graph["num_nodes"] == 5 and np.allclose(ogb_graph["node_feat"], FEAT)


def test_homogeneous_csv(csv_homo):
    g = load_ogb_linkprop(csv_homo)
    assert g.node_types == ["node"] and g["node"].num_nodes == 5
    assert torch.allclose(g["node"].feat, torch.from_numpy(FEAT)) and bool(g["node"].feat_mask.all())
    rel = g["node", "link", "node"]
    assert rel.edge_index.tolist() == [[0, 1, 2, 3, 4], [1, 2, 3, 4, 0]]
    assert rel.split.tolist() == [0, 0, 0, 1, 2]
    meta = g.mmgraph
    assert meta["ids"]["node"] == ["0", "1", "2", "3", "4"]
    feat = meta["features"]["node"]["feat"]
    assert feat["modality"] == "vector" and feat["dim"] == 3
    assert meta["ogb"]["split"] == "time"


def test_dataset_saver_binary_homogeneous(tmp_path):
    """ogb's own writer (DatasetSaver): raw/data.npz and split_dict.pt with numpy arrays."""
    from ogb.io import DatasetSaver

    saver = DatasetSaver("ogbl-tiny", is_hetero=False, version=1, root=str(tmp_path / "sub"))
    saver.save_graph_list([{"edge_index": np.array([[0, 1], [1, 2]]), "num_nodes": 5, "node_feat": FEAT}])
    saver.save_split({"train": {"edge": np.array([[0, 1], [1, 2]])},
                      "valid": {"edge": np.array([[2, 3]]), "edge_neg": np.array([[0, 4]])},
                      "test": {"edge": np.array([[3, 4]]), "edge_neg": np.array([[1, 4]])}}, "random")
    g = load_ogb_linkprop(saver.submission_dir, node_type="author", relation="collab")  # finds tiny/ inside
    rel = g["author", "collab", "author"]
    assert rel.edge_index.tolist() == [[0, 1, 2, 3], [1, 2, 3, 4]] and rel.split.tolist() == [0, 0, 1, 2]
    assert torch.allclose(g["author"].feat, torch.from_numpy(FEAT))


def test_heterogeneous_knowledge_graph(tmp_path):
    """An ogbl-biokg-like folder: CSV hetero raw/ and head/relation/tail triple dicts with types."""
    raw = tmp_path / "ogbl_kg" / "raw"
    raw.mkdir(parents=True)
    counts = pd.DataFrame({"disease": [3], "drug": [2]})
    counts.to_csv(raw / "num-node-dict.csv.gz", index=False, compression="gzip")
    _csv(raw / "triplet-type-list.csv.gz", [["drug", "treats", "disease"], ["drug", "interacts", "drug"]])
    for triplet, rel_id in ((("drug", "treats", "disease"), 0), (("drug", "interacts", "drug"), 1)):
        _csv(raw / "relations" / "___".join(triplet) / "edge_reltype.csv.gz", [[rel_id]])
    split = raw.parent / "split" / "random"
    split.mkdir(parents=True)
    parts = {"train": ([0, 1, 0], [0, 0, 1], [2, 1, 1], ["drug"] * 3, ["disease", "disease", "drug"]),
             "valid": ([1], [0], [0], ["drug"], ["disease"]), "test": ([1], [1], [0], ["drug"], ["drug"])}
    for name, (head, rel, tail, head_type, tail_type) in parts.items():
        torch.save({"head": torch.tensor(head), "relation": torch.tensor(rel), "tail": torch.tensor(tail),
                    "head_type": head_type, "tail_type": tail_type}, split / f"{name}.pt")
    g = load_ogb_linkprop(raw.parent)
    assert {t: g[t].num_nodes for t in g.node_types} == {"disease": 3, "drug": 2}
    treats, interacts = g["drug", "treats", "disease"], g["drug", "interacts", "drug"]
    assert treats.edge_index.tolist() == [[0, 1, 1], [2, 1, 0]] and treats.split.tolist() == [0, 0, 1]
    assert interacts.edge_index.tolist() == [[0, 1], [1, 0]] and interacts.split.tolist() == [0, 2]
    assert g.mmgraph["features"] == {"disease": {}, "drug": {}}


def test_import_writes_a_graph_folder(csv_homo, tmp_path):
    out = import_ogb(csv_homo, tmp_path / "graph")
    g = load_graph(out)
    assert g["node", "link", "node"].split.tolist() == [0, 0, 0, 1, 2]
    assert (out / "ids" / "node.txt").read_text().split() == ["0", "1", "2", "3", "4"]
    with pytest.raises(InputError, match="exists; pass --force"):
        import_ogb(csv_homo, out)


def test_missing_and_broken_files_are_named(csv_homo, tmp_path):
    with pytest.raises(InputError, match=re.escape("--relation: invalid relation name 'a|b'")):
        load_ogb_linkprop(csv_homo, relation="a|b")
    with pytest.raises(InputError, match="OGB dataset folder not found"):
        load_ogb_linkprop(tmp_path / "nothing")
    (csv_homo / "split" / "time" / "valid.pt").unlink()
    with pytest.raises(InputError, match=r"valid\.pt: not found"):
        load_ogb_linkprop(csv_homo)
    torch.save({"source_node": torch.tensor([3]), "target_node": torch.tensor([9])},
               csv_homo / "split" / "time" / "valid.pt")
    with pytest.raises(InputError, match=r"valid\.pt: 'valid': row 1: target node 9 is out of range"):
        load_ogb_linkprop(csv_homo)
    (csv_homo / "split" / "time" / "valid.pt").write_bytes(b"not a torch file")
    with pytest.raises(InputError, match=r"valid\.pt: cannot read the split"):
        load_ogb_linkprop(csv_homo)
    (csv_homo / "split" / "other").mkdir()
    with pytest.raises(InputError, match="several split types .*--split"):
        load_ogb_linkprop(csv_homo)
    torch.save({"source_node": torch.tensor([3]), "target_node": torch.tensor([4])},
               csv_homo / "split" / "time" / "valid.pt")
    (csv_homo / "raw" / "num-node-list.csv.gz").unlink()
    with pytest.raises(InputError, match="raw: no OGB graph files found"):
        load_ogb_linkprop(csv_homo, split="time")
