"""`mmgraph explain` end to end on the tiny graph of tests/eval/explain_graph.py: outputs and exit codes."""
from __future__ import annotations

import json

import pytest

import mmgraph
from mmgraph.cli.main import main
from mmgraph.data.graph_io import write_graph
from tests.eval.explain_graph import TRAIN_YAML, write_explain_graph
from tests.models.tiny_graph import one_thread  # noqa: F401  (autouse: one thread for tiny tensors)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain-cli")
    graph, report = mmgraph.build_graph(write_explain_graph(root), return_report=True)
    graph_dir = write_graph(graph, report, root / "graph")
    (root / "cfg.yaml").write_text(TRAIN_YAML)
    assert main(["train", str(graph_dir), "-o", str(root / "run"), "--config", str(root / "cfg.yaml"), "--quiet"]) == 0
    return root / "run"


def test_explain_json_matches_the_contract(run_dir, capsys):
    assert main(["explain", str(run_dir), "--node", "query:q0", "--relation", "in", "-k", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"relation", "source", "target", "score", "modalities", "evidence", "similar_links"}
    assert (out["relation"], out["source"], out["target"]) == ("query|in|group", "q0", "g0")
    assert [(m["end"], m["feature"]) for m in out["modalities"]] == [("source", "noise")]
    assert set(out["modalities"][0]) == {"end", "feature", "effect", "share"}
    assert 1 <= len(out["evidence"]) <= 2 and set(out["evidence"][0]) == {"edge", "source", "target", "effect"}
    assert out["evidence"][0]["edge"] == "query|near|anchor"
    assert len(out["similar_links"]) == 2 and set(out["similar_links"][0]) == {"source", "target", "similarity"}

    assert main(["predict", str(run_dir), "--node", "query:q0", "--relation", "in", "-k", "1", "--json"]) == 0
    top = json.loads(capsys.readouterr().out)["results"][0]["top"][0]
    assert top["score"] == pytest.approx(out["score"], abs=1e-5)


def test_explain_text_and_png(run_dir, tmp_path, capsys):
    png = tmp_path / "why.png"
    assert main(["explain", str(run_dir), "--node", "item:i5", "--relation", "of", "--target", "group:g1",
                 "--png", str(png)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("item|of|group: i5 -> g1")
    for heading in ("modalities", "evidence", "similar training links"):
        assert heading in text
    assert png.stat().st_size > 5000


def test_explain_brand_new_item(run_dir, tmp_path, capsys):
    (tmp_path / "new.csv").write_text("item,s1,s2,s3,s4,n1,n2\nnew0,0,0,1,0,0.3,-0.2\n")
    assert main(["explain", str(run_dir), "--items", str(tmp_path / "new.csv"), "--type", "item",
                 "--node", "new0", "--relation", "of", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["source"] == "new0" and out["target"] == "g2"


@pytest.mark.parametrize("args, named", [
    (["--node", "query:nope", "--relation", "in"], "'nope'"),
    (["--node", "planet:q0", "--relation", "in"], "'planet'"),
    (["--node", "query:q0", "--relation", "orbits"], "'orbits'"),
    (["--node", "query:q0", "--relation", "in", "--target", "group:g9"], "'g9'"),
    (["--node", "q0", "--relation", "in"], "TYPE:ID"),
    (["--node", "nope", "--relation", "of", "--items", "ITEMS", "--type", "item"], "'nope'"),
])
def test_bad_ids_and_relations_exit_2_naming_them(run_dir, tmp_path, capsys, args, named):
    (tmp_path / "new.csv").write_text("item,s1,s2,s3,s4,n1,n2\nnew0,0,0,1,0,0.3,-0.2\n")
    args = [str(tmp_path / "new.csv") if a == "ITEMS" else a for a in args]
    assert main(["explain", str(run_dir), *args]) == 2
    assert named in capsys.readouterr().err
