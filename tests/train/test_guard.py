"""The divergence guard: a diverging run is rolled back with a smaller step, or stopped, never reported."""
from __future__ import annotations

import math

import pytest
import torch

import mmgraph
from mmgraph.cli.main import main
from mmgraph.data.graph_io import write_graph
from mmgraph.train import trainer
from mmgraph.train.callbacks import DivergenceGuard, TrainingDiverged
from mmgraph.train.run import train_run
from mmgraph.eval.evaluate import evaluate_split

from tiny_media_graph import write_tiny_graph


@pytest.fixture(scope="module")
def graph_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("guard")
    graph, report = mmgraph.build_graph(write_tiny_graph(root), return_report=True)
    return write_graph(graph, report, root / "graph")


def test_guard_restores_the_state_before_the_previous_epoch_and_shrinks_the_step():
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    guard = DivergenceGuard(max_rollbacks=2)
    guard.snapshot(model, optimizer)
    start = model.weight.detach().clone()
    assert guard.check(1, 5.0, model, optimizer)          # good: snapshotted
    with torch.no_grad():
        model.weight += 100.0                              # the bad update of epoch 1's last steps
    assert not guard.check(2, 1e6, model, optimizer)       # exploded: rolled back to before epoch 1
    assert torch.equal(model.weight, start) and guard.lr_scale == 0.5
    assert not guard.check(3, math.nan, model, optimizer)  # non-finite counts too
    assert guard.lr_scale == 0.25
    with pytest.raises(TrainingDiverged, match="epoch 4"):
        guard.check(4, math.inf, model, optimizer)


def test_a_loss_near_zero_never_trips_it():
    guard = DivergenceGuard()
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    assert guard.check(1, 1e-4, model, optimizer) and guard.check(2, 0.5, model, optimizer)


def test_one_bad_epoch_is_rolled_back_and_training_goes_on(graph_dir, tmp_path, monkeypatch):
    real = trainer.run_epoch
    calls = {"n": 0}

    def blows_up_once(*args, **kwargs):
        calls["n"] += 1
        terms = real(*args, **kwargs)
        return {**terms, "loss": float("nan")} if calls["n"] == 3 else terms

    monkeypatch.setattr(trainer, "run_epoch", blows_up_once)
    metrics = train_run(graph_dir, tmp_path / "run", {"epochs": 20, "eval_every": 5}, evaluate=evaluate_split,
                        device=torch.device("cpu"))
    log = (tmp_path / "run" / "train_log.csv").read_text()
    assert metrics["test"]["overall"]["mrr"] > 0.5    # it recovered and learned
    assert len(log.strip().splitlines()) == 21         # every epoch logged, the rolled-back one too


def test_a_run_set_up_to_diverge_stops_with_a_clear_message_and_writes_nothing(graph_dir, tmp_path, capsys):
    # Adam steps of size 1e5 on unbounded DistMult scores: every epoch explodes, even after rollbacks.
    config = tmp_path / "wild.yaml"
    config.write_text("epochs: 30\nlr: 100000.0\ngrad_clip: 0.0\nmodel: {embedding_norm: 0.0, scorer: distmult}\n")
    out = tmp_path / "run"
    code = main(["train", str(graph_dir), "-o", str(out), "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 1
    assert "training diverged at epoch" in err and "rollback" in err
    assert not out.exists()                            # no metrics from a diverged model
