"""The Python front door (mmgraph.api): the README's Python section, save/load, the callable
`mmgraph.train`, and bad inputs named in an InputError."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

import mmgraph
from mmgraph.errors import InputError
from mmgraph.train.config import TrainConfig

REPO = Path(__file__).resolve().parents[1]
FAST = {"epochs": 6, "eval_every": 3, "lr": 0.003, "model": {"channels": 32, "num_layers": 1}, "device": "cpu"}
RUN_FILES = {"model.pt", "metrics.json", "train_log.csv", "curves.png", "embeddings.pt", "config.yaml"}


@pytest.fixture(scope="module")
def graph(demo_graph_dir):
    return mmgraph.load_graph(demo_graph_dir)


@pytest.fixture(scope="module")
def run(graph):
    """A run trained on the demo graph held in memory (no GRAPH_DIR known)."""
    return mmgraph.train(graph, relations=["says"], seed=0, **FAST)


def readme_python() -> str:
    """The first ```python block of the README's "Python in ..." section."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Python in"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_python_section_runs(graph, tmp_path, monkeypatch):
    code = readme_python()
    lines = [line for line in code.splitlines() if line.strip()]
    assert len(lines) <= 12
    assert [line for line in lines if re.match(r"\s*(import|from) ", line)] == ["import mmgraph"]
    # examples/quickstart.py is the same code under its docstring.
    example = (REPO / "examples" / "quickstart.py").read_text()
    assert example.split('"""\n', 2)[-1].strip() == code.strip()

    # The demo graph is already built (the README builds it from the manifest), the new-items
    # table has two clips instead of 480, and training runs a few epochs.
    data = tmp_path / "datasets" / "digits-av"
    data.mkdir(parents=True)
    for name in ("3_george_0.wav", "8_nicolas_1.wav"):
        shutil.copy(REPO / "datasets" / "digits-av" / "clips" / name, data / name)
    (data / "clips.csv").write_text("clip_id,path\nnew_a,3_george_0.wav\nnew_b,8_nicolas_1.wav\n")
    asked = []
    monkeypatch.setattr(mmgraph, "build_graph", lambda manifest, **_: asked.append(manifest) or graph)
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(compile(re.sub(r"epochs=\d+", "epochs=3", code), "README.md", "exec"), ns)

    assert asked == ["datasets/digits-av/manifest.yaml"]
    assert {p.name for p in (tmp_path / "my-run").iterdir()} == RUN_FILES
    assert isinstance(ns["run"], mmgraph.Run) and ns["run"].extra["init"]["loaded"]
    assert set(ns["z"]) == set(graph.node_types) and ns["z"]["clip"].shape == (graph["clip"].num_nodes, 64)
    with pytest.raises(InputError, match="pretraining run"):
        ns["pre"].evaluate("test")


def test_save_and_load_give_the_same_predictions_and_metrics(run, graph, tmp_path):
    assert run.run_dir is None  # nothing written until save
    run.save(tmp_path / "run")
    assert {p.name for p in (tmp_path / "run").iterdir()} == RUN_FILES
    loaded = mmgraph.load_run(tmp_path / "run")
    assert isinstance(loaded, mmgraph.Run)
    query = {"node": ("clip", "0_george_0"), "relation": "says", "k": 3}
    assert loaded.predict(**query) == run.predict(**query)
    assert loaded.metrics == run.metrics == json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert all(torch.equal(loaded.embeddings()[t], z) for t, z in run.embeddings().items())
    # config.yaml holds every resolved setting: read back, the recipe has nothing left to fill
    assert loaded.config == run.config == TrainConfig.from_yaml(tmp_path / "run" / "config.yaml")
    assert [r["epoch"] for r in loaded.log_rows] == [r["epoch"] for r in run.log_rows]
    # Trained on a graph in memory: evaluating the loaded run needs the graph, and then agrees.
    with pytest.raises(InputError, match="graph=GRAPH_DIR"):
        loaded.evaluate("test")
    assert loaded.evaluate("test", graph=graph) == run.evaluate("test") == run.metrics["test"]
    with pytest.raises(InputError, match="exists"):
        run.save(tmp_path / "run")


def test_a_graph_dir_works_and_the_run_remembers_it(demo_graph_dir, tmp_path):
    run = mmgraph.train(demo_graph_dir, **{**FAST, "epochs": 2})
    assert run.graph_dir == Path(demo_graph_dir).resolve()
    loaded = mmgraph.load_run(run.save(tmp_path / "run"))
    assert loaded.evaluate("valid") == run.metrics["valid"]  # finds its graph by itself


def test_mmgraph_train_is_callable_after_importing_submodules():
    import mmgraph.train.config  # noqa: F401  (sets the package attribute to the module)
    import mmgraph.train.run  # noqa: F401

    assert isinstance(mmgraph.train, types.ModuleType) and callable(mmgraph.train)
    assert mmgraph.train.config.TrainConfig().epochs == 200  # still the package
    with pytest.raises(InputError, match="graph: expected a HeteroData or a GRAPH_DIR"):
        mmgraph.train(42)
    # A fresh interpreter, a submodule imported before anything else.
    code = "import mmgraph.train.config, mmgraph; print(callable(mmgraph.train), mmgraph.train.config.__name__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "mmgraph.train.config"]


@pytest.mark.parametrize(("call", "match"), [
    (lambda g: mmgraph.train(g, learning_rate=0.1), "learning_rate"),
    (lambda g: mmgraph.train(g, model={"convv": "sage"}), "convv"),
    (lambda g: mmgraph.train(g, model=64), "model: expected a dict"),
    (lambda g: mmgraph.train(g, config=3), "config: expected"),
    (lambda g: mmgraph.train(g, relations=["hates"], **FAST), "hates"),
    (lambda g: mmgraph.train(g, init=3), "init: expected a run"),
    (lambda g: mmgraph.train(REPO / "datasets" / "digits-av" / "manifest.yaml"), "is a manifest"),
    (lambda g: mmgraph.train(REPO / "no-such-graph"), "no-such-graph"),
    (lambda g: mmgraph.pretrain(g, mask_rate=2.0), "mask_rate"),
    (lambda g: mmgraph.load_run(REPO), "not a run folder"),
])
def test_bad_training_inputs_name_the_thing(graph, call, match):
    with pytest.raises(InputError, match=match):
        call(graph)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"relation": "says"}, "exactly one of node"),
    ({"relation": "says", "node": ("clip", "0_george_0"), "items": "x.csv"}, "exactly one of node"),
    ({"relation": "says", "items": "x.csv"}, "node type"),
    ({"relation": "says", "node": ("clip", 3)}, "node: expected"),
    ({"relation": "says", "node": ("clip", "nope")}, "nope"),
    ({"relation": "says", "node": ("planet", "mars")}, "planet"),
    ({"relation": "hates", "node": ("clip", "0_george_0")}, "hates"),
    ({"relation": "says", "node": ("clip", "0_george_0"), "k": 0}, "k must be"),
])
def test_bad_prediction_inputs_name_the_thing(run, kwargs, match):
    with pytest.raises(InputError, match=match):
        run.predict(**kwargs)


def test_bad_split_and_device_name_the_thing(run):
    with pytest.raises(InputError, match="split"):
        run.evaluate("train")
    with pytest.raises(InputError, match="device"):
        run.evaluate("test", device="tpu:9")


def test_score_and_explain_call_the_explain_engine_with_the_run(run, monkeypatch):
    import mmgraph.eval

    calls = []
    fake = types.ModuleType("mmgraph.eval.explain")
    fake.score_pair = lambda *a, **kw: calls.append(("score", a, kw)) or 0.5
    fake.explain_pair = lambda *a, **kw: calls.append(("explain", a, kw)) or {"relation": "clip|says|word"}
    monkeypatch.setitem(sys.modules, "mmgraph.eval.explain", fake)
    monkeypatch.setattr(mmgraph.eval, "explain", fake, raising=False)
    clip, word = ("clip", "0_george_0"), ("word", "zero")
    drop = [("clip|says|word", "0_george_1", "zero")]
    assert run.score(source=clip, relation="says", target=word, drop_edges=drop) == 0.5
    assert run.explain(source=clip, relation="says", k=3) == {"relation": "clip|says|word"}
    (_, args, kw), (_, args2, kw2) = calls
    assert args[0] is run.model and args[1] is run.prepared() and args[2:] == (clip, "says", word)
    assert kw == {"drop_edges": drop, "device": None}
    assert args2[2:] == (clip, "says", None) and kw2 == {"k": 3, "device": None}
