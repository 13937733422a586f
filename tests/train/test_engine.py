"""The training engine's contract, for every objective (1-N, BCE, pretraining, distillation) in both
batching modes (full graph, neighbour-sampled subgraphs): it learns, and a run killed after some
epochs resumes from its checkpoint to exactly the result of an uninterrupted one."""
from __future__ import annotations

import csv

import pytest
import torch

import mmgraph
from mmgraph.data.graph_io import write_graph
from mmgraph.errors import InputError
from mmgraph.eval.evaluate import evaluate_split
from mmgraph.train import trainer
from mmgraph.train.objective_base import Objective
from mmgraph.train.pretrain import pretrain_run
from mmgraph.train.pretrain_config import PretrainConfig
from mmgraph.train.run import load_run, train_run

from tiny_media_graph import write_tiny_graph

CPU = torch.device("cpu")
MODEL = {"channels": 16, "num_layers": 1, "fusion_heads": 2}
TRAIN = {"epochs": 10, "eval_every": 2, "patience": 50, "lr": 0.02, "batch_size": 16, "model": MODEL}
PRETRAIN = {"epochs": 30, "lr": 0.01, "batch_size": 4, "model": MODEL}   # mini: 2 steps an epoch
OBJECTIVES = {"1-n": {"loss": "1-n"}, "bce": {"loss": "bce"}, "distill": {"loss": "1-n", "distill_weight": 1.0}}
MODES = ["full", "mini"]


@pytest.fixture(scope="module")
def graph_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("engine")
    graph, report = mmgraph.build_graph(write_tiny_graph(root, items=40), return_report=True)
    return write_graph(graph, report, root / "graph")


@pytest.fixture(scope="module")
def teacher_dir(graph_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher") / "run"
    train_run(graph_dir, out, {**TRAIN, "epochs": 20, "batching": "full"}, evaluate=evaluate_split, device=CPU)
    return out


def _train(graph_dir, out, objective: str, mode: str, teacher_dir=None, **kw) -> dict:
    settings = {**TRAIN, **OBJECTIVES[objective], "batching": mode}
    distill = {"distill_from": teacher_dir} if objective == "distill" else {}
    return train_run(graph_dir, out, settings, evaluate=evaluate_split, device=CPU, **distill, **kw)


def _pretrain(graph_dir, out, mode: str, **kw) -> list[dict]:
    return pretrain_run(graph_dir, out, PretrainConfig.from_dict({**PRETRAIN, "batching": mode}), device=CPU, **kw)


def _killed_at(monkeypatch, epoch: int):
    """Make the engine's epoch `epoch` raise, as a kill would (the checkpoint of epoch - 1 is written)."""
    real, calls = trainer.run_epoch, {"n": 0}

    def dies(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == epoch:
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer, "run_epoch", dies)
    return real


def _log(path) -> list[dict]:
    with open(path) as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("objective", list(OBJECTIVES))
def test_supervised_objective_learns_and_resumes_to_the_same_result(objective, mode, graph_dir, teacher_dir,
                                                                     tmp_path, monkeypatch):
    full = _train(graph_dir, tmp_path / "a", objective, mode, teacher_dir)
    rows = _log(tmp_path / "a" / "train_log.csv")
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    # items carry their group in their features; the distilled student (weight 1) learns it from the teacher alone.
    # Chance is .25 for an item's group (4 groups) and far less for a group's items: twice chance, on 8 test links.
    assert full["test"]["relations"]["item|in|group"]["hits@1"] >= 0.5, full["test"]["overall"]
    real = _killed_at(monkeypatch, 5)
    with pytest.raises(KeyboardInterrupt):
        _train(graph_dir, tmp_path / "b", objective, mode, teacher_dir)
    monkeypatch.setattr(trainer, "run_epoch", real)
    resumed = _train(graph_dir, tmp_path / "b", objective, mode, teacher_dir, resume=True)
    assert resumed == full
    assert _log(tmp_path / "b" / "train_log.csv") == rows
    assert load_run(tmp_path / "b").extra["train_config"]["batching"] == mode


@pytest.mark.parametrize("mode", MODES)
def test_pretraining_learns_and_resumes_to_the_same_result(mode, graph_dir, tmp_path, monkeypatch):
    rows = _pretrain(graph_dir, tmp_path / "a", mode)
    assert [r["epoch"] for r in rows] == list(range(1, 31))

    def mean(key, part):
        return sum(r[key] for r in part) / len(part)

    for key in ("loss", "edge", "feature"):   # the contrastive term has no pair here (one feature, one featured type)
        assert mean(key, rows[-5:]) < 0.9 * mean(key, rows[:5]), key
    real = _killed_at(monkeypatch, 12)
    with pytest.raises(KeyboardInterrupt):
        _pretrain(graph_dir, tmp_path / "b", mode)
    assert (tmp_path / ".b.partial" / "checkpoint.pt").is_file() and not (tmp_path / "b").exists()
    monkeypatch.setattr(trainer, "run_epoch", real)
    _pretrain(graph_dir, tmp_path / "b", mode, resume=True)
    assert _log(tmp_path / "b" / "pretrain_log.csv") == _log(tmp_path / "a" / "pretrain_log.csv")
    za, zb = load_run(tmp_path / "a").embeddings(), load_run(tmp_path / "b").embeddings()
    assert all(torch.equal(za[t], zb[t]) for t in za)


def test_pretraining_uses_the_configured_optimizer(graph_dir, tmp_path, monkeypatch):
    made = []
    real = trainer.make_optimizer

    def watch(config, parameters):
        optimizer = real(config, parameters)
        made.append(type(optimizer).__name__)
        return optimizer

    monkeypatch.setattr(trainer, "make_optimizer", watch)
    config = PretrainConfig.from_dict({**PRETRAIN, "epochs": 2, "optimizer": "adagrad"})
    pretrain_run(graph_dir, tmp_path / "pre", config, device=CPU)
    assert made == ["Adagrad"]
    assert PretrainConfig().optimizer == "adam"       # the default keeps the numbers of before
    with pytest.raises(InputError, match="optimizer"):
        PretrainConfig.from_dict({"optimizer": "sgd"})
    with pytest.raises(InputError, match="batching"):
        PretrainConfig.from_dict({"batching": "auto"})


def test_an_objective_without_validation_trains_every_epoch_and_its_terms_are_logged(graph_dir):
    class Constant(Objective):
        """One step per epoch pulling one weight to 0: terms loss and half."""

        def start(self, x, m, device):
            self.seen = []

        def epoch_steps(self, mode, epoch, generator, ctx):
            self.seen.append(mode)
            return [None, None]

        def step_loss(self, trained, batch, generator):
            w = next(trained.model.parameters())
            loss = (w ** 2).sum()
            return loss, {"loss": loss, "half": loss / 2}

    from mmgraph.train.prepare import prepare_graph
    from mmgraph.train.config import TrainConfig

    graph = mmgraph.load_graph(graph_dir)
    config = TrainConfig.from_dict({**TRAIN, "epochs": 3, "batching": "mini", "patience": 1})
    prepared = prepare_graph(graph, relations=["in"], seed=0)
    objective = Constant()
    state = trainer.fit(trainer.build_model(config, prepared), prepared, config, device=CPU, objective=objective,
                        evaluate=evaluate_split)
    assert objective.seen == ["mini"] * 3 and state.best_state is None   # no validation, no early stop
    assert [r["epoch"] for r in state.log_rows] == [1, 2, 3]
    assert all(r["half"] == pytest.approx(r["loss"] / 2) and "valid_mrr" not in r for r in state.log_rows)


def test_cold_start_reaches_the_mini_batch_sampler(graph_dir, tmp_path, monkeypatch):
    from mmgraph.train import minibatch, supervised

    real_cold, real_sampler = supervised.cold_start_messages, minibatch.epoch_sampler
    cold, sampled = [], []

    def cold_start(*args, **kwargs):
        out = real_cold(*args, **kwargs)
        cold.append(out)   # the epoch's message edges without the chosen nodes' edges, the chosen nodes
        return out

    def sampler(prepared, config, message_idx):
        sampled.append(message_idx)
        return real_sampler(prepared, config, message_idx)

    monkeypatch.setattr(supervised, "cold_start_messages", cold_start)
    monkeypatch.setattr(minibatch, "epoch_sampler", sampler)
    settings = {**TRAIN, "epochs": 3, "batching": "mini", "cold_start_ratio": 0.5}
    metrics = train_run(graph_dir, tmp_path / "run", settings, evaluate=evaluate_split, device=CPU)
    # what edges it drops is tests/train/test_inductive.py's; here: the sampler gets its output
    assert len(cold) == len(sampled) == 3 and all(out[0] is s for out, s in zip(cold, sampled))
    assert all(out[1]["item"].numel() > 0 for out in cold)
    assert metrics["test"]["overall"]["count"] > 0


@pytest.mark.parametrize("mode", MODES)
def test_pretraining_aligns_two_modalities_of_a_node_in_both_modes(mode, tmp_path):
    # the item's two columns as two features: one same-node InfoNCE pair (f, g) per item
    manifest = write_tiny_graph(tmp_path, items=40)
    manifest.write_text(manifest.read_text().replace(
        "features: {f: {modality: numeric, columns: [f1, f2]}}",
        "features: {f: {modality: numeric, columns: [f1]}, g: {modality: numeric, columns: [f2]}}"))
    graph, report = mmgraph.build_graph(manifest, return_report=True)
    graph_dir = write_graph(graph, report, tmp_path / "graph")
    config = PretrainConfig.from_dict({**PRETRAIN, "epochs": 20, "batching": mode, "edge_weight": 0.0,
                                       "feature_weight": 0.0})
    rows = pretrain_run(graph_dir, tmp_path / "pre", config, device=CPU)
    first = sum(r["contrastive"] for r in rows[:5]) / 5
    last = sum(r["contrastive"] for r in rows[-5:]) / 5
    assert first > 0 and last < first, (first, last)


def test_bf16_steps_learn_and_precision_is_checked(graph_dir, tmp_path, monkeypatch):
    from mmgraph.train import optim
    from mmgraph.train.config import TrainConfig

    seen = []
    real = optim.step_precision

    def watch(precision, device):
        context = real(precision, device)
        seen.append(isinstance(context, torch.autocast))
        return context

    monkeypatch.setattr(trainer, "step_precision", watch)
    metrics = train_run(graph_dir, tmp_path / "bf16", {**TRAIN, "batching": "full", "precision": "bf16"},
                        evaluate=evaluate_split, device=CPU)
    rows = _log(tmp_path / "bf16" / "train_log.csv")
    assert seen and all(seen)                                   # every step ran under bf16 autocast
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    assert metrics["test"]["relations"]["item|in|group"]["hits@1"] >= 0.5, metrics["test"]["overall"]
    assert optim.resolve_precision("fp32", CPU) == "fp32"
    assert optim.resolve_precision("auto", CPU) == ("bf16" if optim.fast_bf16(CPU) else "fp32")
    assert TrainConfig().precision == "fp32" and PretrainConfig().precision == "fp32"
    for make in (TrainConfig.from_dict, PretrainConfig.from_dict):
        with pytest.raises(InputError, match="precision"):
            make({"precision": "fp16"})
