"""Training runs as files: the contract outputs, early stopping, resume after a kill, config errors."""
from __future__ import annotations

import json

import pytest
import torch

import mmgraph
from mmgraph.data.graph_io import write_graph
from mmgraph.errors import InputError
from mmgraph.train import trainer
from mmgraph.train.config import TrainConfig
from mmgraph.train.run import load_run, train_run
from mmgraph.eval.evaluate import evaluate_split

from tiny_media_graph import write_tiny_graph

SETTINGS = {"epochs": 12, "eval_every": 2, "patience": 50, "lr": 0.02,
            "model": {"channels": 16, "num_layers": 1}}


@pytest.fixture()
def graph_dir(tmp_path):
    graph, report = mmgraph.build_graph(write_tiny_graph(tmp_path), return_report=True)
    return write_graph(graph, report, tmp_path / "graph")


def test_run_files_and_learning(graph_dir, tmp_path):
    metrics = train_run(graph_dir, tmp_path / "run", TrainConfig.from_dict({**SETTINGS, "epochs": 40}),
                        evaluate=evaluate_split, device=torch.device("cpu"))
    # Items carry their group in their features: the predictor must find it.
    assert metrics["test"]["relations"]["item|in|group"]["hits@1"] > 0.6
    run = load_run(tmp_path / "run")
    assert run.extra["train_config"]["epochs"] == 40
    assert json.loads((tmp_path / "run" / "metrics.json").read_text()) == metrics
    assert not list(tmp_path.glob(".run.partial*"))


def test_killed_run_resumes_to_the_same_result(graph_dir, tmp_path, monkeypatch):
    config = TrainConfig.from_dict(SETTINGS)
    full = train_run(graph_dir, tmp_path / "a", config, evaluate=evaluate_split, device=torch.device("cpu"))

    real_epoch = trainer.run_epoch
    calls = {"n": 0}

    def dies_at_epoch_7(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt("killed")
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(trainer, "run_epoch", dies_at_epoch_7)
    with pytest.raises(KeyboardInterrupt):
        train_run(graph_dir, tmp_path / "b", config, evaluate=evaluate_split, device=torch.device("cpu"))
    assert not (tmp_path / "b").exists() and (tmp_path / ".b.partial" / "checkpoint.pt").is_file()
    monkeypatch.setattr(trainer, "run_epoch", real_epoch)
    resumed = train_run(graph_dir, tmp_path / "b", config, evaluate=evaluate_split, device=torch.device("cpu"),
                        resume=True)
    assert resumed == full
    log_a = (tmp_path / "a" / "train_log.csv").read_text().splitlines()
    log_b = (tmp_path / "b" / "train_log.csv").read_text().splitlines()
    assert [r.split(",")[:3] for r in log_a] == [r.split(",")[:3] for r in log_b]


def test_resume_without_checkpoint_is_bad_input(graph_dir, tmp_path):
    with pytest.raises(InputError, match="no checkpoint"):
        train_run(graph_dir, tmp_path / "run", TrainConfig.from_dict(SETTINGS), evaluate=evaluate_split,
                  device=torch.device("cpu"),
                  resume=True)


def test_config_errors_name_the_file_and_key(tmp_path):
    bad = tmp_path / "cfg.yaml"
    bad.write_text("epochs: 3\nlearning_rate: 0.1\n")
    with pytest.raises(InputError, match=r"cfg.yaml.*learning_rate"):
        TrainConfig.from_yaml(bad)
    bad.write_text("model: {convv: sage}\n")
    with pytest.raises(InputError, match=r"cfg.yaml.*convv"):
        TrainConfig.from_yaml(bad)
    bad.write_text("loss: hinge\n")
    with pytest.raises(InputError, match="loss"):
        TrainConfig.from_yaml(bad)


def test_unknown_relation_is_bad_input(graph_dir, tmp_path):
    with pytest.raises(InputError, match="likes"):
        train_run(graph_dir, tmp_path / "run", TrainConfig.from_dict({**SETTINGS, "relations": ["likes"]}),
                  evaluate=evaluate_split, device=torch.device("cpu"))


def test_train_run_is_the_python_train_plus_save(graph_dir, tmp_path):
    # One way to train: `mmgraph train` (train_run) and mmgraph.train(...).save(...) agree exactly.
    config = TrainConfig.from_dict(SETTINGS)
    metrics = train_run(graph_dir, tmp_path / "cli", config, evaluate=evaluate_split, device=torch.device("cpu"))
    run = mmgraph.train(graph_dir, config=config, device="cpu")
    assert run.metrics == metrics
    run.save(tmp_path / "py")
    for name in ("metrics.json", "config.yaml"):
        assert (tmp_path / "cli" / name).read_text() == (tmp_path / "py" / name).read_text(), name
    assert TrainConfig.from_yaml(tmp_path / "cli" / "config.yaml") == config
    cli, py = load_run(tmp_path / "cli"), load_run(tmp_path / "py")
    assert all(torch.equal(cli.embeddings()[t], z) for t, z in py.embeddings().items())
