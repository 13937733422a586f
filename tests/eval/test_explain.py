"""`explain` on a tiny graph where the answers are known by construction (tests/eval/explain_graph.py)."""
from __future__ import annotations

import pytest
import torch

import mmgraph
from mmgraph.data.graph_io import write_graph
from mmgraph.errors import InputError
from mmgraph.eval.explain import explain_pair, score_pair
from mmgraph.eval.pair_graph import PairGraph
from mmgraph.eval.predict import predict_items, predict_node
from mmgraph.train.config import TrainConfig
from mmgraph.train.run import load_run, train_run
from mmgraph.eval.evaluate import evaluate_split
from tests.eval.explain_graph import TRAIN_YAML, write_explain_graph
from tests.models.tiny_graph import one_thread  # noqa: F401  (autouse: one thread for tiny tensors)

TEST_IDS = [f"{i}" for i in range(0, 48, 5)]  # rows with i % 5 == 0: the test links


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain")
    graph, report = mmgraph.build_graph(write_explain_graph(root), return_report=True)
    graph_dir = write_graph(graph, report, root / "graph")
    (root / "cfg.yaml").write_text(TRAIN_YAML)
    train_run(graph_dir, root / "run", TrainConfig.from_yaml(root / "cfg.yaml"), evaluate=evaluate_split,
              device=torch.device("cpu"))
    return mmgraph.load_run(root / "run")


@pytest.fixture(scope="module")
def prepared(run):
    return run.prepared()


def test_a_link_carried_by_one_edge_has_that_edge_as_its_evidence(run, prepared):
    for i in TEST_IDS:
        result = explain_pair(run.model, prepared, ("query", f"q{i}"), "in", ("group", f"g{int(i) % 4}"), k=3)
        top = result["evidence"][0]
        assert (top["edge"], top["source"], top["target"]) == ("query|near|anchor", f"q{i}", f"a{i}")
        assert top["effect"] > 0.5 * result["score"] > 0
        assert all(top["effect"] > 2 * e["effect"] for e in result["evidence"][1:])
        # the reported effect is what score_pair measures with the edge removed
        dropped = score_pair(run.model, prepared, ("query", f"q{i}"), "in", ("group", f"g{int(i) % 4}"),
                             drop_edges=[("near", f"q{i}", f"a{i}")])
        assert top["effect"] == pytest.approx(result["score"] - dropped, abs=1e-5)


def test_a_feature_that_alone_decides_the_score_has_the_largest_effect(run, prepared):
    for i in TEST_IDS:
        result = explain_pair(run.model, prepared, ("item", f"i{i}"), "of", ("group", f"g{int(i) % 4}"))
        source = {m["feature"]: m for m in result["modalities"] if m["end"] == "source"}
        assert set(source) == {"signal", "noise"}
        assert source["signal"]["effect"] > max(source["noise"]["effect"], 0.0)
        assert source["signal"]["share"] > 0.5
        assert sum(m["share"] for m in source.values()) == pytest.approx(1.0)


def test_score_equals_predict_and_default_target_is_the_top_prediction(run, prepared):
    for node, relation in (("query:q5", "in"), ("item:i10", "of"), ("group:g2", "in")):
        top = predict_node(run, node, relation, k=1)["results"][0]["top"][0]
        node_type, node_id = node.split(":")
        result = explain_pair(run.model, prepared, (node_type, node_id), relation, k=2)
        other = result["target"] if result["source"] == node_id else result["source"]
        assert other == top["id"]
        assert result["score"] == pytest.approx(top["score"], abs=1e-5)
        assert run.score(source=(node_type, node_id), relation=relation, target=(
            "group" if node_type != "group" else "query", other)) == pytest.approx(top["score"], abs=1e-5)
    assert run.explain(source=("query", "q5"), relation="query|in|group")["target"] == "g1"


def test_field_measurement_is_exact(run, prepared):
    graph = PairGraph(run.model, prepared)
    et = ("query", "in", "group")
    src, dst = ("query", graph.row("query", "q10")), ("group", graph.row("group", "g2"))
    field = graph.field([src, dst])
    assert 1 < field.candidates.numel() < graph.num_edges  # the field is part of the graph
    picks = [field.candidates[:1], field.candidates[-2:], torch.zeros(0, dtype=torch.long)]
    batched = graph.field_scores(field, et, src, dst, picks)
    whole = [graph.pair_score(et, src, dst, drop=p) for p in picks]
    assert batched.tolist() == pytest.approx(whole, abs=1e-5)
    # an edge outside the field changes nothing
    outside = torch.tensor([i for i in range(graph.num_edges) if i not in set(field.candidates.tolist())][:1])
    assert graph.pair_score(et, src, dst, drop=outside) == pytest.approx(whole[-1], abs=1e-6)


def test_dropping_an_edge_drops_its_reverse_too(run, prepared):
    graph = PairGraph(run.model, prepared)
    ids = graph.edge_ids([("query|near|anchor", "q0", "a0")])
    assert torch.equal(ids, graph.edge_ids([("anchor|rev_near|query", "a0", "q0")]))
    edges = graph.message_edges(ids)
    q0, a0 = graph.row("query", "q0"), graph.row("anchor", "a0")
    near, rev = edges[("query", "near", "anchor")], edges[("anchor", "rev_near", "query")]
    assert not ((near[0] == q0) & (near[1] == a0)).any() and not ((rev[0] == a0) & (rev[1] == q0)).any()
    assert near.size(1) == rev.size(1) == 47


def test_brand_new_items_score_as_predict(run, prepared, tmp_path):
    (tmp_path / "new.csv").write_text("item,s1,s2,s3,s4,n1,n2\nnew0,0,0,1,0,0.3,-0.2\nnew1,1,0,0,0,-1.0,0.5\n")
    from mmgraph.eval.predict import encode_items

    items = encode_items(run, tmp_path / "new.csv", "item")
    expected = predict_items(run, tmp_path / "new.csv", "item", "of", k=1)["results"]
    for item, want in zip(("new0", "new1"), expected):
        result = explain_pair(run.model, prepared, ("item", item), "of", items=items)
        assert result["source"] == item and result["target"] == want["top"][0]["id"]
        assert result["score"] == pytest.approx(want["top"][0]["score"], abs=1e-5)
        signal = next(m for m in result["modalities"] if m["feature"] == "signal")
        assert signal["share"] > 0.5


@pytest.mark.parametrize("kwargs, named", [
    ({"source": ("query", "nope")}, "'nope'"),
    ({"source": ("planet", "q0")}, "'planet'"),
    ({"relation": "orbits"}, "'orbits'"),
    ({"target": ("anchor", "a0")}, "'anchor'"),
    ({"target": ("group", "g9")}, "'g9'"),
    ({"drop_edges": [("near", "q0", "a1")]}, "q0 -> a1"),
    ({"drop_edges": [("friend", "q0", "a0")]}, "'friend'"),
    ({"drop_edges": [("near", "q0", "zz")]}, "'zz'"),
])
def test_bad_ids_and_relations_are_input_errors_naming_them(run, prepared, kwargs, named):
    args = {"source": ("query", "q0"), "relation": "in", "target": ("group", "g0"), **kwargs}
    with pytest.raises(InputError, match=named.replace("(", r"\(")):
        score_pair(run.model, prepared, args["source"], args["relation"], args["target"],
                   drop_edges=args.get("drop_edges", ()))


def test_whole_graph_fallback_gives_the_same_evidence(run, prepared, monkeypatch):
    import mmgraph.eval.explain as explain

    pair = (("query", "q15"), "in", ("group", "g3"))
    exact = explain_pair(run.model, prepared, *pair, k=3)["evidence"]
    monkeypatch.setattr(explain, "_FIELD_TOLERANCE", -1.0)  # as if the field missed the whole graph's score
    fallback = explain_pair(run.model, prepared, *pair, k=3)["evidence"]
    assert [(e["source"], e["target"]) for e in fallback] == [(e["source"], e["target"]) for e in exact]
    assert [e["effect"] for e in fallback] == pytest.approx([e["effect"] for e in exact], abs=1e-6)


@pytest.mark.parametrize("conv", ["gcn", "hgt", "rgcn", "compgcn"])
def test_every_conv_two_layers(conv, run, tmp_path):
    """Other convs, two layers: the one carrying edge still comes first; the field is still exact."""
    (tmp_path / "cfg.yaml").write_text(TRAIN_YAML.replace("num_layers: 1", f"num_layers: 2, conv: {conv}")
                                       .replace("epochs: 60", "epochs: 30"))
    config = TrainConfig.from_yaml(tmp_path / "cfg.yaml")
    train_run(run.graph_dir, tmp_path / "run", config, evaluate=evaluate_split, device=torch.device("cpu"))
    other = load_run(tmp_path / "run")
    prepared = other.prepared()
    result = explain_pair(other.model, prepared, ("query", "q5"), "in", ("group", "g1"), k=2)
    top = result["evidence"][0]
    assert (top["source"], top["target"]) == ("q5", "a5")
    graph = PairGraph(other.model, prepared)
    et, src, dst = ("query", "in", "group"), ("query", graph.row("query", "q5")), ("group", graph.row("group", "g1"))
    field = graph.field([src, dst])
    picks = [field.candidates[:1], field.candidates[-3:]]
    assert graph.field_scores(field, et, src, dst, picks).tolist() == pytest.approx(
        [graph.pair_score(et, src, dst, drop=p) for p in picks], abs=1e-4)


def test_device_may_be_named(run, prepared):
    want = score_pair(run.model, prepared, ("query", "q5"), "in", ("group", "g1"))
    for device in ("cpu", "auto", torch.device("cpu")):
        assert score_pair(run.model.cpu(), prepared, ("query", "q5"), "in", ("group", "g1"),
                          device=device) == pytest.approx(want, abs=1e-5)
    run.model.cpu()
