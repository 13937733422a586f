"""The command line end to end on the demo graph: outputs of CONTRACT.md and the exit codes 0 / 2 / 1."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mmgraph.cli.main import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run_dir(demo_graph_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", str(demo_graph_dir), "-o", str(out), "--epochs", "30", "--quiet"]) == 0
    return out


def test_train_writes_the_run_files(run_dir):
    for name in ("model.pt", "metrics.json", "train_log.csv", "curves.png", "embeddings.pt"):
        assert (run_dir / name).is_file(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics) == {"valid", "test"}
    says = metrics["test"]["relations"]["clip|says|word"]
    assert set(says) == {"count", "mrr", "hits@1", "hits@3", "hits@10", "auc", "ap", "precision", "recall", "f1"}
    assert says["count"] == 90
    header = (run_dir / "train_log.csv").read_text().splitlines()[0].split(",")
    assert header[:2] == ["epoch", "loss"] and "seconds" in header


def test_evaluate_json_matches_contract(run_dir, capsys):
    assert main(["evaluate", str(run_dir), "--json", "--split", "test"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["split"] == "test"
    assert "clip|says|word" in out["relations"] and "overall" in out
    # Evaluating again gives exactly what training wrote.
    written = json.loads((run_dir / "metrics.json").read_text())["test"]
    assert out["relations"]["clip|says|word"]["mrr"] == pytest.approx(written["relations"]["clip|says|word"]["mrr"])


def test_predict_node_json(run_dir, capsys):
    assert main(["predict", str(run_dir), "--node", "clip:7_jackson_1", "--relation", "says", "-k", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["relation"] == "clip|says|word"
    (result,) = out["results"]
    assert result["source"] == "7_jackson_1"
    scores = [t["score"] for t in result["top"]]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)


def test_predict_leaves_out_known_training_links(run_dir, capsys):
    # 5_george_10 is a training clip of "five": its known link must not be offered again.
    assert main(["predict", str(run_dir), "--node", "clip:5_george_10", "--relation", "says", "-k", "10", "--json"]) == 0
    top = json.loads(capsys.readouterr().out)["results"][0]["top"]
    assert "five" not in [t["id"] for t in top]
    assert len(top) == 9


def test_predict_brand_new_items(run_dir, tmp_path, capsys):
    # Two clips copied next to a new table: encoded with the run's encoders, linked from features alone.
    for name in ("3_george_0.wav", "8_nicolas_1.wav"):
        shutil.copy(REPO / "datasets" / "digits-av" / "clips" / name, tmp_path / name)
    (tmp_path / "new.csv").write_text("clip_id,path\nnew_a,3_george_0.wav\nnew_b,8_nicolas_1.wav\n")
    code = main(["predict", str(run_dir), "--items", str(tmp_path / "new.csv"), "--type", "clip",
                 "--relation", "says", "-k", "2", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["source"] for r in out["results"]] == ["new_a", "new_b"]
    assert all(len(r["top"]) == 2 for r in out["results"])


def test_embed_writes_parquet(run_dir, tmp_path):
    import pyarrow.parquet as pq

    out = tmp_path / "emb.parquet"
    assert main(["embed", str(run_dir), "-o", str(out)]) == 0
    table = pq.read_table(out)
    assert table.column_names == ["node_type", "id", "embedding"]
    assert table.num_rows == 480 + 300 + 10 + 3
    assert main(["embed", str(run_dir), "-o", str(out)]) == 2  # exists: needs --force


@pytest.mark.parametrize("argv", [
    ["build", "does-not-exist.yaml", "-o", "x"],
    ["train", "no-such-graph", "-o", "x"],
    ["evaluate", "no-such-run"],
    ["predict", "no-such-run", "--relation", "says"],
    ["frobnicate"],
    ["train"],
])
def test_bad_input_exits_2(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc_info:
        raise SystemExit(main(argv))
    assert exc_info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_bad_node_and_relation_exit_2(run_dir, capsys):
    assert main(["predict", str(run_dir), "--node", "clip:nope", "--relation", "says"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["predict", str(run_dir), "--node", "clip:0_george_0", "--relation", "hates"]) == 2
    assert "hates" in capsys.readouterr().err


def test_existing_output_needs_force(run_dir, demo_graph_dir):
    before = (run_dir / "model.pt").read_bytes()
    assert main(["train", str(demo_graph_dir), "-o", str(run_dir), "--epochs", "1", "--quiet"]) == 2
    assert (run_dir / "model.pt").read_bytes() == before


def test_unexpected_failure_exits_1(run_dir, monkeypatch, capsys):
    import mmgraph.train.run

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(mmgraph.train.run, "load_run", boom)
    assert main(["evaluate", str(run_dir)]) == 1
    assert "disk on fire" in capsys.readouterr().err


def test_explain_on_the_demo_graph_matches_predict_within_seconds(run_dir, capsys):
    import time

    started = time.perf_counter()
    assert main(["explain", str(run_dir), "--node", "clip:7_jackson_1", "--relation", "says", "-k", "3", "--json"]) == 0
    seconds = time.perf_counter() - started
    out = json.loads(capsys.readouterr().out)
    assert main(["predict", str(run_dir), "--node", "clip:7_jackson_1", "--relation", "says", "-k", "1", "--json"]) == 0
    top = json.loads(capsys.readouterr().out)["results"][0]["top"][0]
    assert (out["target"], out["score"]) == (top["id"], pytest.approx(top["score"], abs=1e-5))
    assert [m["feature"] for m in out["modalities"]] == ["sound", "name"]
    assert out["evidence"] and all(e["effect"] > 0 for e in out["evidence"])
    assert seconds < 30  # a few seconds on a 2-core CPU; generous for a busy test machine
