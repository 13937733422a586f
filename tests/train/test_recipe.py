"""The no-config recipe: what it chooses for each kind of graph, that it learns, and that user keys win."""
from __future__ import annotations

import json

import pytest
import torch
import yaml

import mmgraph
from mmgraph.cli.main import main
from mmgraph.data.graph_io import write_graph
from mmgraph.train.recipe import GraphProfile, merge_settings, profile_graph, recipe_for, resolve_config
from mmgraph.train.run import train_run
from mmgraph.eval.evaluate import evaluate_split

from tiny_graphs import write_tiny_citations, write_tiny_kg
from tiny_media_graph import write_tiny_graph


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    out = {}
    for name, writer in (("kg", write_tiny_kg), ("citations", write_tiny_citations), ("media", write_tiny_graph)):
        root = tmp_path_factory.mktemp(name)
        graph, report = mmgraph.build_graph(writer(root), return_report=True)
        out[name] = (graph, write_graph(graph, report, root / "graph"))
    return out


def test_each_kind_gets_its_recipe(graphs):
    kg, _ = resolve_config(graphs["kg"][0])
    assert profile_graph(graphs["kg"][0]).kind == "knowledge graph"
    assert (kg.model.num_layers, kg.model.scorer, kg.model.reciprocal, kg.loss) == (0, "complex", True, "1-n")
    assert kg.n3_weight > 0 and kg.optimizer == "adagrad"
    cites, _ = resolve_config(graphs["citations"][0])
    assert profile_graph(graphs["citations"][0]).kind == "featured homogeneous graph"
    assert (cites.model.conv, cites.model.num_layers, cites.model.scorer, cites.early_stop_metric) == ("gcn", 1, "dot", "auc")
    assert cites.model.feature_input and cites.model.feature_similarity and not cites.model.degree_prior
    media, reasons = resolve_config(graphs["media"][0])
    assert profile_graph(graphs["media"][0]).kind == "media graph"
    assert media.model.conv == "sage" and media.model.embedding_norm > 0   # bounded scores
    assert any("media graph" in r for r in reasons)


def kg_profile(entities: int, edges: int) -> GraphProfile:
    et = ("entity", "r", "entity")
    return GraphProfile(num_nodes={"entity": entities}, modalities={"entity": ()}, scored=(et,), scored_why="all",
                        num_edges={et: edges}, featured_share=0.0)


def test_kg_rank_and_precision_follow_the_1n_cost():
    small, _ = recipe_for(kg_profile(135, 5_000))              # UMLS-sized: cost 1.4e6
    large, reasons = recipe_for(kg_profile(40_000, 87_000))    # WordNet-sized: cost 7e9
    large_bf16, _ = recipe_for(kg_profile(40_000, 87_000), fast_products=True)
    huge, _ = recipe_for(kg_profile(2_000_000, 20_000_000), fast_products=True)
    assert small["model"]["channels"] == 2000 and "precision" not in small
    assert large["model"]["channels"] == 200 and large["precision"] == "auto"
    assert any("bf16" in r for r in reasons)
    assert large_bf16["model"]["channels"] == 1000     # bf16 products: a larger rank in the same budget
    assert huge["model"]["channels"] == 200 and huge["precision"] == "auto"


def test_asking_for_fp32_keeps_the_fp32_rank(graphs, monkeypatch):
    import mmgraph.train.recipe as recipe

    monkeypatch.setattr(recipe, "_EPOCH_FLOP", 1.0)   # every rank over budget: the smallest, 100
    monkeypatch.setattr(recipe, "fast_bf16", lambda device: True)
    monkeypatch.setattr(recipe, "_BF16_GAIN", 1e30)   # with bf16 every rank fits: the largest
    cpu = torch.device("cpu")
    assert resolve_config(graphs["kg"][0], device=cpu)[0].model.channels == 2000
    assert resolve_config(graphs["kg"][0], {"precision": "fp32"}, device=cpu)[0].model.channels == 200
    assert resolve_config(graphs["kg"][0])[0].model.channels == 200   # no device: bf16 not assumed


def test_relations_with_a_split_are_scored_the_others_carry_messages(graphs):
    graph = graphs["media"][0].clone()
    graph["group", "near", "group"].edge_index = torch.tensor([[0, 1], [1, 2]])   # no split column
    profile = profile_graph(graph)
    assert profile.scored == (("item", "in", "group"),)
    assert "carry messages" in profile.scored_why
    assert profile_graph(graph, ["near"]).scored == (("group", "near", "group"),)


def test_user_keys_win_model_keys_merge_one_by_one(graphs):
    config, reasons = resolve_config(graphs["kg"][0], {"epochs": 3, "model": {"channels": 8}})
    assert config.epochs == 3 and config.model.channels == 8
    assert config.model.scorer == "complex"          # the recipe's, the user gave no scorer
    assert any("model.channels" in r for r in reasons)
    assert merge_settings({"a": 1, "model": {"x": 1, "y": 2}}, {"model": {"y": 3}}) == {"a": 1, "model": {"x": 1, "y": 3}}


@pytest.mark.parametrize("name", ["kg", "citations", "media"])
def test_no_config_run_learns_and_config_yaml_reproduces_it(graphs, tmp_path, name):
    graph_dir = graphs[name][1]
    first = train_run(graph_dir, tmp_path / "a", {"epochs": 30}, evaluate=evaluate_split, device=torch.device("cpu"))
    saved = yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())
    assert saved["epochs"] == 30 and saved["tune"] is False
    again = train_run(graph_dir, tmp_path / "b", tmp_path / "a" / "config.yaml" and saved, evaluate=evaluate_split,
                      device=torch.device("cpu"))
    assert again["test"]["overall"] == first["test"]["overall"]   # same settings, same seed: same numbers
    if name == "citations":   # the similarity term is weighed on the run's early-stop metric
        fitted = mmgraph.load_run(tmp_path / "a").extra["feature_similarity"]
        assert fitted["metric"] == "auc" and fitted["valid_auc_with"] >= fitted["valid_auc_without"]
        assert fitted["valid_auc_with"] == pytest.approx(first["valid"]["overall"]["auc"])
    overall = first["test"]["overall"]
    # clearly learns: chance MRR is far lower and chance AUC .5 (the tiny citation graph's 12 test
    # edges join random nodes of a cluster, so its features alone are worth about .75 against uniform negatives)
    assert overall["mrr"] > 0.4 or overall["auc"] > 0.7, overall


def test_kg_entity_features_feed_the_similarity_term_not_the_embeddings(tmp_path):
    from mmgraph.train.prepare import prepare_graph
    from mmgraph.train.trainer import build_model

    graph = mmgraph.build_graph(write_tiny_kg(tmp_path, vectors=True))
    assert profile_graph(graph).kind == "knowledge graph" and profile_graph(graph).modalities["entity"] == ("vector",)
    config, reasons = resolve_config(graph)
    assert config.use_features and config.model.feature_similarity
    assert any("similarity term per relation" in r for r in reasons)
    model = build_model(config, prepare_graph(graph, relations=config.relations, use_features=config.use_features))
    assert model.projection.slot_names["entity"] == ["<learned>"]        # the learned embedding alone
    assert model.similarity is not None
    asked, _ = resolve_config(graph, {"model": {"feature_input": True, "feature_similarity": False}})
    model = build_model(asked, prepare_graph(graph, relations=asked.relations))
    assert model.projection.slot_names["entity"] == ["ring", "<learned>"]   # joined to the learned one
    assert model.similarity is None
    (tmp_path / "plain").mkdir()
    plain, _ = resolve_config(mmgraph.build_graph(write_tiny_kg(tmp_path / "plain")))
    assert not plain.model.feature_similarity and not plain.use_features


def test_similarity_weights_are_fitted_on_valid_saved_and_read_back(tmp_path):
    graph_dir = tmp_path / "graph"
    graph, report = mmgraph.build_graph(write_tiny_kg(tmp_path, vectors=True), return_report=True)
    write_graph(graph, report, graph_dir)
    metrics = train_run(graph_dir, tmp_path / "run", {"epochs": 2}, evaluate=evaluate_split,
                        device=torch.device("cpu"))
    run = mmgraph.load_run(tmp_path / "run")
    fitted, prior = run.extra["feature_similarity"], run.extra["degree_prior"]
    for term, module in ((fitted, run.model.similarity), (prior, run.model.degree_prior)):
        assert set(term["weights"]) == {"entity|next|entity", "entity|pair|entity", "entity|prev|entity"}
        assert term["valid_mrr_with"] >= term["valid_mrr_without"]        # 0 is on the grid
        saved = {k: w.tolist() for k, w in zip(term["weights"], module.weights)}
        assert saved == term["weights"]                                   # the model file keeps them
    assert all(len(w) == 2 for w in prior["weights"].values())            # (head end, tail end)
    # the similarity first, then the prior with the similarity's weights in place
    assert prior["valid_mrr_without"] == pytest.approx(fitted["valid_mrr_with"])
    assert prior["valid_mrr_with"] == pytest.approx(metrics["valid"]["overall"]["mrr"])
    assert run.evaluate("test")["overall"] == pytest.approx(metrics["test"]["overall"])


def test_kg_recipe_adds_the_degree_prior_unless_its_buffer_is_large(tmp_path, monkeypatch):
    from mmgraph.train import recipe

    graph = mmgraph.build_graph(write_tiny_kg(tmp_path))
    config, reasons = resolve_config(graph)
    assert config.model.degree_prior and any("log-degree prior" in r for r in reasons)
    monkeypatch.setattr(recipe, "_PRIOR_CELLS", 10)
    config, reasons = resolve_config(graph)
    assert not config.model.degree_prior and any("no degree prior" in r for r in reasons)


def test_cli_train_without_config_logs_the_choice(graphs, tmp_path, capsys):
    assert main(["train", str(graphs["kg"][1]), "-o", str(tmp_path / "run"), "--epochs", "4"]) == 0
    err = capsys.readouterr().err
    assert "recipe: " in err and "knowledge graph" in err
    config = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert config["model"]["scorer"] == "complex" and config["epochs"] == 4
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]["overall"]["count"] > 0


def test_kg_steps_ask_heads_and_tails_of_independent_shuffles_covering_every_edge(graphs):
    from mmgraph import distributed
    from mmgraph.train.prepare import prepare_graph
    from mmgraph.train.supervised import SupervisedObjective
    from mmgraph.train.trainer import build_model

    graph = graphs["kg"][0]
    config, _ = resolve_config(graph, {"batch_size": 16})
    prepared = prepare_graph(graph, relations=config.relations, seed=0)
    emb = build_model(config, prepared).projection.embeddings["entity"].weight
    assert emb.std() < 0.2             # ComplEx-N3 starts small (std 0.1)
    objective = SupervisedObjective(prepared, config)
    objective.start({}, {}, torch.device("cpu"))
    steps = objective.epoch_steps("full", 1, torch.Generator().manual_seed(0), distributed.current())
    tails, heads = [], []
    for _, _, groups in steps:
        for _, _, ((w, pair), (w_head, pair_head)) in groups:
            tails.append(torch.cat([w[None], pair]))
            heads.append(torch.cat([w_head[None], pair_head]))
    tails, heads = torch.cat(tails, 1), torch.cat(heads, 1)
    supervised = sum(int(prepared.splits[et].train.numel()) for et in prepared.relations)
    assert tails.size(1) == heads.size(1) == supervised          # each edge once per direction
    as_set = lambda t: sorted(map(tuple, t.t().tolist()))       # noqa: E731
    assert as_set(tails) == as_set(heads)                        # the same edges ...
    assert not torch.equal(tails, heads)                         # ... in another order
