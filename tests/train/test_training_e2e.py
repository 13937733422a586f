"""One real training run on the demo graph (raw WAVs, PNGs, words) against the no-feature ablation."""
from __future__ import annotations

import torch

from mmgraph.data.graph_io import load_graph
from mmgraph.eval.evaluate import evaluate_split
from mmgraph.train.config import TrainConfig
from mmgraph.train.prepare import prepare_graph
from mmgraph.train.trainer import build_model, embed_for_eval, fit

from mmgraph.train.presets import DEMO_TRAIN

SETTINGS = {**DEMO_TRAIN, "epochs": 60, "relations": ["says", "shows"]}


def _train_and_test(graph, config: TrainConfig) -> dict:
    prepared = prepare_graph(graph, relations=config.relations, seed=config.seed, use_features=config.use_features)
    model = build_model(config, prepared)
    fit(model, prepared, config, device=torch.device("cpu"), evaluate=evaluate_split)
    z = embed_for_eval(model, prepared, torch.device("cpu"))
    return evaluate_split(model, prepared, z, split="test", with_classification=False)["relations"]


def test_media_features_beat_the_no_feature_baseline(demo_graph_dir):
    graph = load_graph(demo_graph_dir)
    with_media = _train_and_test(graph, TrainConfig.from_dict(SETTINGS))
    without = _train_and_test(graph, TrainConfig.from_dict({**SETTINGS, "use_features": False}))
    says, says_base = with_media["clip|says|word"], without["clip|says|word"]
    shows, shows_base = with_media["image|shows|word"], without["image|shows|word"]
    # Test clips and images have no says/shows edges: only their media can tell the word.
    assert says["hits@1"] >= 0.75 and shows["hits@1"] >= 0.4
    assert says["hits@1"] > says_base["hits@1"] + 0.3
    assert shows["hits@1"] > shows_base["hits@1"] + 0.3
