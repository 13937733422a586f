"""Data-parallel training: 2 CPU processes under torchrun (gloo) against one process, same seed."""
from __future__ import annotations

import csv
import json

import pytest
import torch
import yaml

import mmgraph
from mmgraph.data.graph_io import write_graph
from mmgraph.train.run import load_run, train_run
from mmgraph.eval.evaluate import evaluate_split

from tiny_media_graph import write_tiny_graph
from torchrun_launch import check, torchrun

pytestmark = pytest.mark.slow

# Small batches: each epoch has two steps, each step's supervision edges split over the ranks.
SETTINGS = {"epochs": 20, "eval_every": 5, "patience": 50, "lr": 0.02, "batch_size": 8,
            "model": {"channels": 16, "num_layers": 1}}


@pytest.fixture(scope="module")
def graph_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp-graph")
    graph, report = mmgraph.build_graph(write_tiny_graph(root, items=80), return_report=True)
    return write_graph(graph, report, root / "graph")


def _losses(run_dir) -> list[float]:
    with open(run_dir / "train_log.csv") as f:
        return [float(row["loss"]) for row in csv.DictReader(f)]


def test_two_processes_match_one(graph_dir, tmp_path):
    config_path = tmp_path / "train.yaml"
    config_path.write_text(yaml.safe_dump(SETTINGS))
    out = tmp_path / "out"
    out.mkdir()
    # a mapping, like --config: the recipe fills the keys SETTINGS leaves out, the same for both runs
    single = train_run(graph_dir, out / "single", dict(SETTINGS), evaluate=evaluate_split, device=torch.device("cpu"))

    result = check(torchrun(["train", str(graph_dir), "-o", "ddp", "--config", str(config_path), "--device", "cpu"],
                            cwd=out))
    # Only rank 0 prints the table and logs; one RUN_DIR, no partial or stray folders.
    assert result.stdout.count("overall") == 1
    assert result.stderr.count("epoch 5  loss") == 1
    assert sorted(p.name for p in out.iterdir()) == ["ddp", "single"]
    run = load_run(out / "ddp")
    assert {"model.pt", "metrics.json", "embeddings.pt", "train_log.csv"} <= {p.name for p in (out / "ddp").iterdir()}
    assert run.extra["train_config"]["batch_size"] == 8

    # Gradients averaged over shards of each step = the full step's gradient (up to share sizes
    # and float order), so the loss curve and the metrics follow the single process closely.
    assert _losses(out / "ddp") == pytest.approx(_losses(out / "single"), rel=0.02)
    ddp = json.loads((out / "ddp" / "metrics.json").read_text())
    for split in ("valid", "test"):
        for key in ("mrr", "hits@1"):
            assert abs(ddp[split]["overall"][key] - single[split]["overall"][key]) <= 0.05, (split, key)
    assert single["test"]["overall"]["hits@1"] > 0.5  # it learned something worth comparing


def test_no_config_under_torchrun_gets_the_same_recipe_and_quality(tmp_path):
    """No --config on a knowledge graph (the media recipe is the one above, with a few keys given):
    every rank resolves the same recipe from the graph, and the result matches one process."""
    from tiny_graphs import write_tiny_kg

    root = tmp_path / "kg"
    root.mkdir()
    graph, report = mmgraph.build_graph(write_tiny_kg(root), return_report=True)
    graph_dir = write_graph(graph, report, root / "graph")
    out = tmp_path / "out"
    out.mkdir()
    flags = {"epochs": 6}   # short; everything else comes from the recipe
    single = train_run(graph_dir, out / "single", dict(flags), evaluate=evaluate_split, device=torch.device("cpu"))
    result = check(torchrun(["train", str(graph_dir), "-o", "ddp", "--epochs", "6", "--device", "cpu"], cwd=out))
    assert result.stderr.count("recipe: graph:") == 1          # rank 0 says what it chose, once
    recipe = [line for line in (out / "single" / "config.yaml").read_text().splitlines() if line.startswith("#")]
    assert recipe and recipe == [line for line in (out / "ddp" / "config.yaml").read_text().splitlines()
                                 if line.startswith("#")]
    assert load_run(out / "ddp").extra["train_config"] == load_run(out / "single").extra["train_config"]
    ddp = json.loads((out / "ddp" / "metrics.json").read_text())
    assert abs(ddp["test"]["overall"]["mrr"] - single["test"]["overall"]["mrr"]) <= 0.05
