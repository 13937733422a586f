"""Training with reciprocal relations + N3 + Adagrad on a tiny KG, and early stopping on AUC."""
from __future__ import annotations

import torch

import mmgraph
from mmgraph.data.graph_io import load_graph, write_graph
from mmgraph.eval.evaluate import evaluate_split, ranking_for_relation
from mmgraph.eval.metrics import ranks_to_metrics
from mmgraph.train.config import TrainConfig
from mmgraph.train.prepare import prepare_graph
from mmgraph.train.trainer import build_model, embed_for_eval, fit

from tiny_media_graph import write_tiny_graph

CPU = torch.device("cpu")


def _write_ring_kg(root, n: int = 12):
    """Entities 0..n-1, relation `next`: i -> i+1 (mod n), one relation whose heads and tails differ."""
    lines = [f"e{i}\tnext\te{(i + 1) % n}" for i in range(n)]
    for split, rows in (("train", lines), ("valid", lines[:2]), ("test", lines[2:4])):
        (root / f"{split}.txt").write_text("\n".join(rows) + "\n")
    (root / "manifest.yaml").write_text(
        "name: ring\nedges:\n  - {triples: {train: train.txt, valid: valid.txt, test: test.txt},\n"
        "     source_type: entity, target_type: entity}\n")
    return root / "manifest.yaml"


def _train_mrr(model, prepared, et, z) -> tuple[float, float]:
    edges = prepared.split_edges_of(et, "train")
    ranks = ranking_for_relation(model, et, z, edges, prepared.filters[et])
    tail, head = ranks.chunk(2)
    return ranks_to_metrics(tail)["mrr"], ranks_to_metrics(head)["mrr"]


def test_reciprocal_n3_training_predicts_heads_through_the_inverse_relation(tmp_path):
    graph, report = mmgraph.build_graph(_write_ring_kg(tmp_path), return_report=True)
    graph = load_graph(write_graph(graph, report, tmp_path / "graph"))
    config = TrainConfig.from_dict({
        "epochs": 60, "eval_every": 20, "patience": 50, "lr": 0.1, "optimizer": "adagrad", "n3_weight": 1e-3,
        "batch_size": 12, "model": {"channels": 16, "num_layers": 0, "scorer": "complex", "reciprocal": True,
                                    "variational": False, "dropout": 0.0, "feature_dropout": 0.0}})
    prepared = prepare_graph(graph, relations=config.relations, seed=0)
    model = build_model(config, prepared)
    fit(model, prepared, config, device=CPU, evaluate=evaluate_split)
    et = prepared.relations[0]
    z = embed_for_eval(model, prepared, CPU)
    tail_mrr, head_mrr = _train_mrr(model, prepared, et, z)
    assert tail_mrr > 0.9 and head_mrr > 0.9
    with torch.no_grad():  # drop the inverse half: head queries lose their answers, tail queries keep them
        model.relation_vectors[:, model.relation_vectors.size(1) // 2:] = 0
    tail_after, head_after = _train_mrr(model, prepared, et, z)
    assert tail_after == tail_mrr and head_after < 0.5


def test_early_stopping_on_valid_auc(tmp_path):
    graph, report = mmgraph.build_graph(write_tiny_graph(tmp_path), return_report=True)
    graph = load_graph(write_graph(graph, report, tmp_path / "graph"))
    config = TrainConfig.from_dict({"epochs": 8, "eval_every": 2, "patience": 50, "lr": 0.02,
                                    "early_stop_metric": "auc", "model": {"channels": 16, "num_layers": 1}})
    prepared = prepare_graph(graph, relations=config.relations, seed=0)
    state = fit(build_model(config, prepared), prepared, config, device=CPU, evaluate=evaluate_split)
    evals = [r for r in state.log_rows if "valid_auc" in r]
    assert len(evals) == 4 and all(0.0 <= r["valid_auc"] <= 1.0 for r in evals)
    best = max(evals, key=lambda r: r["valid_auc"])
    assert state.best_epoch == best["epoch"] and state.best_mrr == best["valid_auc"]
