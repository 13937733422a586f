"""`mmgraph import ogb`, `mmgraph train` on the imported graph, and `mmgraph export` with its exit codes."""
from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from mmgraph.cli.main import main
from mmgraph.data.export_tables import read_export
from mmgraph.data.graph_io import load_graph


@pytest.fixture(scope="module")
def ogb_folder(tmp_path_factory):
    """A 30-node ring-like graph in OGB's on-disk layout (CSV raw/, one split_dict.pt)."""
    root = tmp_path_factory.mktemp("ogb") / "ogbl_ring"
    raw = root / "raw"
    raw.mkdir(parents=True)
    n, rng = 30, np.random.default_rng(0)
    nodes = np.arange(n)
    edges = np.stack([np.concatenate([nodes, nodes]), np.concatenate([(nodes + 1) % n, (nodes + 2) % n])], 1)
    edges = edges[rng.permutation(len(edges))]
    train, valid, test = edges[:44], edges[44:52], edges[52:]
    for name, rows in {"edge": train, "num-node-list": [[n]], "num-edge-list": [[len(train)]],
                       "node-feat": rng.normal(size=(n, 4)).astype(np.float32)}.items():
        pd.DataFrame(rows).to_csv(raw / f"{name}.csv.gz", header=False, index=False, compression="gzip")
    split = root / "split" / "random"
    split.mkdir(parents=True)
    torch.save({"train": {"edge": torch.from_numpy(train)},
                "valid": {"edge": torch.from_numpy(valid), "edge_neg": torch.zeros(3, 2, dtype=torch.long)},
                "test": {"edge": torch.from_numpy(test), "edge_neg": torch.zeros(3, 2, dtype=torch.long)}},
               split / "split_dict.pt")
    return root


@pytest.fixture(scope="module")
def ogb_graph(ogb_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("imported") / "graph"
    assert main(["import", "ogb", str(ogb_folder), "-o", str(out), "--quiet"]) == 0
    return out


def test_imported_ogb_graph_trains(ogb_graph, tmp_path):
    report = json.loads((ogb_graph / "build.json").read_text())
    assert report["edges"]["node|link|node"] == {"count": 60, "split": {"train": 44, "valid": 8, "test": 8}}
    run = tmp_path / "run"
    assert main(["train", str(ogb_graph), "-o", str(run), "--epochs", "3", "--quiet"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["relations"]["node|link|node"]["count"] == 8


def test_import_exit_codes(ogb_folder, ogb_graph, tmp_path, capsys):
    assert main(["import", "ogb", str(ogb_folder), "-o", str(ogb_graph), "--quiet"]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["import", "ogb", str(tmp_path / "none"), "-o", str(tmp_path / "g"), "--quiet"]) == 2
    assert "OGB dataset folder not found" in capsys.readouterr().err
    args = ["import", "ogb", str(ogb_folder), "-o", str(tmp_path / "g"), "--split", "time", "--quiet"]
    assert main(args) == 2
    assert "split types: random" in capsys.readouterr().err


def test_export_graphstorm_from_the_command_line(ogb_graph, tmp_path):
    out = tmp_path / "gs"
    assert main(["export", str(ogb_graph), "--format", "graphstorm", "-o", str(out), "--quiet"]) == 0
    assert json.loads((out / "config.json").read_text())["version"] == "gconstruct-v0.1"
    graph, read = load_graph(ogb_graph), read_export(out)
    assert torch.equal(read["node"].feat, graph["node"].feat)
    assert torch.equal(read["node", "link", "node"].edge_index, graph["node", "link", "node"].edge_index)
    assert main(["export", str(ogb_graph), "--format", "graphstorm", "-o", str(out), "--quiet"]) == 2


def test_export_dgl_without_dgl_exits_2_naming_the_package(ogb_graph, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "dgl", None)
    assert main(["export", str(ogb_graph), "--format", "dgl", "-o", str(tmp_path / "dgl"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "needs the `dgl` package" in err and "pip" in err
    assert not (tmp_path / "dgl").exists()
