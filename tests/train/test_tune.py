"""`train --tune`: an Optuna search on the validation split only, within its budget, best trial kept."""
from __future__ import annotations

import csv
import json

import pytest
import torch

import mmgraph
from mmgraph.cli.main import main
from mmgraph.data.graph_io import write_graph
from mmgraph.eval import evaluate as evaluate_module
from mmgraph.train.run import train_run

from tiny_graphs import write_tiny_kg


@pytest.fixture(scope="module")
def graph_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("tune")
    graph, report = mmgraph.build_graph(write_tiny_kg(root), return_report=True)
    return write_graph(graph, report, root / "graph")


def test_the_search_reads_only_the_validation_split(graph_dir, tmp_path, monkeypatch):
    seen = []
    real = evaluate_module.evaluate_split

    def watch(*args, split="test", **kwargs):
        seen.append(split)
        return real(*args, split=split, **kwargs)

    # the evaluator is injected: every trial's validation and, last, the run's valid and test metrics
    settings = {"tune": True, "tune_budget_minutes": 0.25, "epochs": 20, "model": {"channels": 32}}
    metrics = train_run(graph_dir, tmp_path / "run", settings, evaluate=watch, device=torch.device("cpu"))
    assert seen[-2:] == ["valid", "test"]           # the final metrics of the kept model
    assert seen[:-2] and set(seen[:-2]) == {"valid"}   # every evaluation inside the search: validation only
    with open(tmp_path / "run" / "tuning.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= 2 and set(rows[0]) == {"trial", "settings", "valid_mrr", "seconds", "pruned"}
    assert json.loads(rows[0]["settings"])["model.channels"] == 32   # trial 0 is the resolved config itself
    best = max(float(r["valid_mrr"]) for r in rows)
    assert metrics["valid"]["overall"]["mrr"] == pytest.approx(best, abs=1e-6)   # the best trial's model kept
    assert (tmp_path / "run" / "tuning.png").stat().st_size > 1000
    assert sum(float(r["seconds"]) for r in rows) < 0.25 * 60 + 10   # within the budget (one epoch of slack)


def test_cli_tune_writes_the_chosen_settings(graph_dir, tmp_path):
    out = tmp_path / "run"
    assert main(["train", str(graph_dir), "-o", str(out), "--tune", "--budget", "0.1", "--epochs", "6"]) == 0
    config = (out / "config.yaml").read_text()
    assert "tune: false" in config                  # reading it back trains the chosen settings
    assert (out / "tuning.csv").is_file()


@pytest.mark.parametrize("model", [
    {"channels": 1000, "num_layers": 0, "scorer": "complex", "fusion_heads": 4},   # 1000 // 4 = 250 is no width
    {"channels": 200, "num_layers": 0, "scorer": "complex", "fusion_heads": 4},
    {"channels": 96, "num_layers": 2, "conv": "hgt", "heads": 3, "fusion_heads": 4},
    {"channels": 64, "num_layers": 2, "scorer": "distmult"},
])
def test_every_searched_width_is_one_the_model_takes(model):
    from mmgraph.train.config import TrainConfig
    from mmgraph.train.tune import search_space

    config = TrainConfig.from_dict({"model": model})
    widths = search_space(config)["model.channels"][1]
    assert len(widths) >= 3 and model["channels"] in widths
    for width in widths:
        TrainConfig.from_dict({"model": {**model, "channels": width}})   # raises InputError on a bad width
