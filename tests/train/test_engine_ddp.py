"""Every objective of the engine under torchrun: 2 CPU processes (gloo), full and mini-batch."""
from __future__ import annotations

import csv
import json
import math

import pytest
import torch
import yaml

import mmgraph
from mmgraph.data.graph_io import write_graph
from mmgraph.eval.evaluate import evaluate_split
from mmgraph.train.run import train_run

from tiny_media_graph import write_tiny_graph
from torchrun_launch import check, torchrun

pytestmark = pytest.mark.slow

MODEL = {"channels": 16, "num_layers": 1, "fusion_heads": 2}
TRAIN = {"epochs": 12, "eval_every": 4, "patience": 50, "lr": 0.02, "batch_size": 8, "model": MODEL}
# One launch costs ~40 s on a loaded 2-core machine, so not every pair: 1-N full batch is
# tests/train/test_ddp.py's; BCE full, 1-N mini and distillation full share their code paths with these.
CASES = [("bce", "mini"), ("distill", "mini"), ("pretrain", "full"), ("pretrain", "mini")]


@pytest.fixture(scope="module")
def graph_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("engine-ddp")
    graph, report = mmgraph.build_graph(write_tiny_graph(root, items=60), return_report=True)
    graph_dir = write_graph(graph, report, root / "graph")
    train_run(graph_dir, root / "teacher", {**TRAIN, "epochs": 20, "batching": "full"}, evaluate=evaluate_split,
              device=torch.device("cpu"))
    return graph_dir


@pytest.mark.parametrize("objective,mode", CASES)
def test_each_objective_runs_under_torchrun(objective, mode, graph_dir, tmp_path):
    config = tmp_path / "config.yaml"
    if objective == "pretrain":
        config.write_text(yaml.safe_dump({"epochs": 8, "lr": 0.01, "batching": mode, "batch_size": 4, "model": MODEL}))
        args = ["pretrain", str(graph_dir), "-o", "run", "--config", str(config), "--device", "cpu"]
    else:
        loss = {"loss": "bce"} if objective == "bce" else {"loss": "1-n", "distill_weight": 0.5}
        config.write_text(yaml.safe_dump({**TRAIN, **loss, "batching": mode}))
        args = ["train", str(graph_dir), "-o", "run", "--config", str(config), "--device", "cpu"]
        if objective == "distill":
            args += ["--distill-from", str(graph_dir.parent / "teacher")]
    result = check(torchrun(args, cwd=tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "run"]   # rank 0 alone wrote
    log = "pretrain_log.csv" if objective == "pretrain" else "train_log.csv"
    with open(tmp_path / "run" / log) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == (8 if objective == "pretrain" else 12)
    assert all(math.isfinite(float(r["loss"])) for r in rows)
    if objective != "pretrain":
        assert result.stdout.count("overall") == 1       # only rank 0 prints the table
        metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
        assert metrics["test"]["relations"]["item|in|group"]["hits@1"] > 0.5
    else:
        assert result.stdout.count("pretrained 8 epochs") == 1
