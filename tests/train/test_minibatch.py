"""Neighbour-sampled mini-batch training, the auto rule, and layer-wise bounded-memory embedding."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import mmgraph
from mmgraph.data.graph_io import write_graph
from mmgraph.errors import InputError
from mmgraph.eval.evaluate import evaluate_split
from mmgraph.train import minibatch, trainer
from mmgraph.train.batching import choose_batching, full_batch_bytes, resolved_fanouts
from mmgraph.train.optim import resolve_precision
from mmgraph.train.config import TrainConfig
from mmgraph.train.layerwise import embed_layerwise, node_chunks
from mmgraph.train.message_passing import epoch_edges, reverse_edge_type
from mmgraph.train.prepare import prepare_graph
from mmgraph.train.run import train_run
from mmgraph.train.trainer import build_model, embed_for_eval, fit, to_device

from tiny_media_graph import write_tiny_graph

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from tiny_graph import one_thread, tiny_graph  # noqa: E402,F401  (one_thread: autouse fixture)

CPU = torch.device("cpu")
SETTINGS = {"epochs": 30, "eval_every": 3, "patience": 50, "lr": 0.02, "batch_size": 8,
            "model": {"channels": 16, "num_layers": 1}}


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    return mmgraph.build_graph(write_tiny_graph(tmp_path_factory.mktemp("tiny"), items=60))


def _train(graph, settings: dict):
    config = TrainConfig.from_dict(settings)
    prepared = prepare_graph(graph, relations=config.relations, seed=config.seed)
    model = build_model(config, prepared)
    state = fit(model, prepared, config, device=CPU, evaluate=evaluate_split)
    z = embed_for_eval(model, prepared, CPU)
    return state, evaluate_split(model, prepared, z, split="test", with_classification=False)["overall"], model


@pytest.mark.parametrize("loss", ["bce", "1-n"])
def test_minibatch_training_learns_about_as_well_as_full_batch(graph, loss):
    settings = {**SETTINGS, "loss": loss}
    config = TrainConfig.from_dict(settings)
    prepared = prepare_graph(graph, seed=0)
    untrained = build_model(config, prepared)
    before = evaluate_split(untrained, prepared, embed_for_eval(untrained, prepared, CPU), split="test",
                            with_classification=False)["overall"]
    state, mini, _ = _train(graph, {**settings, "batching": "mini"})
    _, full, _ = _train(graph, {**settings, "batching": "full"})
    assert state.batching == "mini"
    # items carry their group in their features: both modes must find it
    assert mini["hits@1"] >= 0.65 and mini["hits@1"] > before["hits@1"] + 0.3
    assert mini["mrr"] >= full["mrr"] - 0.1


def test_auto_picks_full_batch_when_it_fits_and_mini_batch_when_not(graph):
    prepared = prepare_graph(graph, seed=0)
    config = TrainConfig.from_dict(SETTINGS)
    need = full_batch_bytes(prepared, config)
    assert choose_batching(prepared, config, CPU, budget_bytes=2 * need)[0] == "full"
    mode, why = choose_batching(prepared, config, CPU, budget_bytes=need // 2)
    assert mode == "mini" and "exceed" in why
    # the budget from the config; an explicit choice wins over the estimate
    assert choose_batching(prepared, config.replace(memory_budget_gb=1e-9), CPU)[0] == "mini"
    assert choose_batching(prepared, config.replace(memory_budget_gb=64.0), CPU)[0] == "full"
    assert choose_batching(prepared, config.replace(batching="full"), CPU, budget_bytes=1)[0] == "full"
    assert choose_batching(prepared, config.replace(batching="mini"), CPU, budget_bytes=2 ** 50)[0] == "mini"
    # more channels, layers or nodes need more
    wider = config.replace(model=config.model.__class__(channels=64, num_layers=2))
    assert full_batch_bytes(prepared, wider) > need
    assert resolved_fanouts(wider) == [10, 10]
    # bf16 steps keep less; the rule counts them so where the device runs them
    assert full_batch_bytes(prepared, config, precision="bf16") < need
    if resolve_precision("auto", CPU) == "bf16":
        assert "(bf16 steps)" in choose_batching(prepared, config.replace(precision="auto"), CPU)[1]


def test_auto_mode_trains_mini_batch_under_a_tiny_budget(graph):
    state, metrics, _ = _train(graph, {**SETTINGS, "epochs": 4, "memory_budget_gb": 1e-9})
    assert state.batching == "mini" and len(state.log_rows) == 4


def test_supervision_edges_of_a_step_never_carry_its_messages(graph):
    config = TrainConfig.from_dict({**SETTINGS, "batch_size": 4, "fanouts": [-1]})
    prepared = prepare_graph(graph, seed=0)
    model = build_model(config, prepared)
    x, m = to_device(prepared, CPU)
    filters = minibatch.negative_filters(prepared.train_filters)
    generator = torch.Generator().manual_seed(0)
    steps = 0
    for _ in range(3):   # epochs: the split into message and supervision edges is redrawn
        message_idx, supervision = epoch_edges(prepared.splits, prepared.relations, supervision_ratio=0.3,
                                               generator=generator)
        sampler = minibatch.epoch_sampler(prepared, config, message_idx)
        for which, pairs in minibatch.supervision_batches(prepared, supervision, config.batch_size, generator):
            _, _, sub = minibatch.minibatch_step_loss(model, prepared, config, sampler, which, pairs, x, m,
                                                      filters, generator)
            for i, et in enumerate(prepared.relations):
                n_dst = prepared.num_nodes[et[2]]
                supervised = pairs[:, which == i]
                keys = supervised[0] * n_dst + supervised[1]
                for sampled_type, flip in ((et, False), (reverse_edge_type(et), True)):
                    ei = sub.edge_index[sampled_type]
                    glob = torch.stack([sub.n_id[sampled_type[0]][ei[0]], sub.n_id[sampled_type[2]][ei[1]]])
                    if flip:
                        glob = glob.flip(0)
                    assert not torch.isin(glob[0] * n_dst + glob[1], keys).any()
                # with fan-out -1 the step sees every message edge into its seeds: some exist
                assert sub.edge_index[et].size(1) + sub.edge_index[reverse_edge_type(et)].size(1) > 0
            steps += 1
    assert steps >= 6


def test_minibatch_training_is_deterministic_with_a_seed(graph):
    settings = {**SETTINGS, "epochs": 6, "batching": "mini", "model": {"channels": 16, "num_layers": 2}}
    a, metrics_a, model_a = _train(graph, settings)
    b, metrics_b, model_b = _train(graph, settings)
    assert [r["loss"] for r in a.log_rows] == [r["loss"] for r in b.log_rows]
    assert metrics_a == metrics_b
    for (name, p), q in zip(model_a.state_dict().items(), model_b.state_dict().values()):
        assert torch.equal(p, q), name
    c, _, _ = _train(graph, {**settings, "seed": 1})
    assert [r["loss"] for r in c.log_rows] != [r["loss"] for r in a.log_rows]


def test_killed_minibatch_run_resumes_to_the_same_result(tmp_path, monkeypatch):
    built, report = mmgraph.build_graph(write_tiny_graph(tmp_path, items=60), return_report=True)
    graph_dir = write_graph(built, report, tmp_path / "graph")
    config = TrainConfig.from_dict({**SETTINGS, "epochs": 10, "batching": "mini"})
    full = train_run(graph_dir, tmp_path / "a", config, evaluate=evaluate_split, device=CPU)

    real_epoch = trainer.run_epoch
    calls = {"n": 0}

    def dies_at_epoch_6(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt("killed")
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(trainer, "run_epoch", dies_at_epoch_6)
    with pytest.raises(KeyboardInterrupt):
        train_run(graph_dir, tmp_path / "b", config, evaluate=evaluate_split, device=CPU)
    monkeypatch.setattr(trainer, "run_epoch", real_epoch)
    # a resumed run keeps the killed run's choice, whatever the budget says now
    resumed = train_run(graph_dir, tmp_path / "b", config.replace(batching="auto"), evaluate=evaluate_split, device=CPU,
                        resume=True)
    assert resumed == full


@pytest.mark.parametrize("conv", ["sage", "rgcn", "hgt", "compgcn"])
def test_layerwise_embedding_equals_whole_graph_embedding(conv):
    g = tiny_graph()
    config = TrainConfig.from_dict({"model": {"channels": 16, "num_layers": 2, "conv": conv, "norm": "batch"}})
    prepared = prepare_graph(g, relations=["says", "shows"], seed=0)
    model = build_model(config, prepared)
    model.train()   # give BatchNorm running statistics that differ from the defaults
    with torch.no_grad():
        model.embed(*to_device(prepared, CPU), prepared.message_edges())
    whole = embed_for_eval(model, prepared, CPU, layerwise=False)
    x, m = to_device(prepared, CPU)
    chunked = embed_layerwise(model, prepared, x, m, max_nodes=3, max_edges=2)
    for t in whole:
        torch.testing.assert_close(chunked[t], whole[t], atol=1e-5, rtol=1e-5)


def test_layerwise_embedding_carries_the_score_terms_columns_as_the_whole_graph_does():
    g = tiny_graph()
    config = TrainConfig.from_dict({"model": {"channels": 16, "num_layers": 2, "feature_similarity": True,
                                              "degree_prior": True}})
    prepared = prepare_graph(g, relations=["says", "shows"], seed=0)
    model = build_model(config, prepared)
    whole = embed_for_eval(model, prepared, CPU, layerwise=False)
    x, m = to_device(prepared, CPU)
    chunked = embed_layerwise(model, prepared, x, m, max_nodes=3, max_edges=2)
    featured = [t for t in whole if x.get(t)]
    width = 16 + model.degree_prior.width                              # log-degrees appended to every type
    assert all(whole[t].size(1) >= width for t in whole) and model.degree_prior.log_degree.abs().sum() > 0
    assert featured and all(whole[t].size(1) > width for t in featured)   # then unit features
    for t in whole:
        torch.testing.assert_close(chunked[t], whole[t], atol=1e-5, rtol=1e-5)


def test_node_chunks_respect_both_limits():
    deg = torch.tensor([5, 1, 1, 9, 0, 0, 2])
    chunks = node_chunks(deg, max_nodes=3, max_edges=6)
    assert chunks[0][0] == 0 and chunks[-1][1] == deg.numel()
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:]))
    for start, end in chunks:
        assert end - start <= 3
        assert end - start == 1 or int(deg[start:end].sum()) <= 6
    assert node_chunks(torch.zeros(0, dtype=torch.long), max_nodes=2, max_edges=2) == []


def test_minibatch_without_message_passing(graph):
    state, metrics, _ = _train(graph, {**SETTINGS, "epochs": 4, "batching": "mini",
                                       "model": {"channels": 16, "num_layers": 0}})
    assert state.batching == "mini" and metrics["count"] > 0


def test_batching_options_are_checked():
    with pytest.raises(InputError, match="batching"):
        TrainConfig.from_dict({"batching": "sometimes"})
    with pytest.raises(InputError, match="fanouts"):
        TrainConfig.from_dict({"fanouts": [10], "model": {"num_layers": 2}})
    with pytest.raises(InputError, match="fanouts"):
        TrainConfig.from_dict({"fanouts": [10, 0]})
    with pytest.raises(InputError, match="memory_budget_gb"):
        TrainConfig.from_dict({"memory_budget_gb": -1})
    assert TrainConfig.from_dict({"fanouts": [15, -1]}).to_dict()["fanouts"] == [15, -1]
