"""Every objective of the engine under torchrun (2 CPU processes, gloo) in both batching modes,
against one process with the same seed, and each one killed and resumed: all in ONE launch of
tests/train/engine_matrix.py (a launch costs ~40 s of process start and imports on a loaded
2-core machine; the combinations themselves a few seconds each). The `mmgraph train` CLI under
torchrun is tests/train/test_ddp.py's."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

import mmgraph
from mmgraph.data.graph_io import write_graph
from mmgraph.eval.evaluate import evaluate_split
from mmgraph.train.run import train_run

import engine_matrix
from engine_matrix import COMBOS, EXTRA_SEEDS, KILL_AT, PRETRAIN, TRAIN
from tiny_media_graph import write_tiny_graph
from torchrun_launch import check, torchrun

pytestmark = pytest.mark.slow

# Where the ranks' shares are cut from one shared draw (1-N and distillation on the full graph:
# no negatives, the same messages), the gradients averaged over shards are the full step's, so
# the run follows one process up to float order (as in test_ddp.py). Elsewhere each rank draws
# its own negatives (BCE, pretraining) or samples its own seeds' neighbourhoods (mini-batch): the
# same estimator with other draws, so the curve differs from one process's and only the quality
# reached is compared.
FOLLOWS_ONE_PROCESS = {"1-n-full", "distill-full"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[dict, dict, Path]:
    """(the launch's matrix.json, the same combinations in this process, the launch's output folder)."""
    root = tmp_path_factory.mktemp("engine-ddp")
    graph, report = mmgraph.build_graph(write_tiny_graph(root, items=60), return_report=True)
    graph_dir = write_graph(graph, report, root / "graph")
    teacher = root / "teacher"
    train_run(graph_dir, teacher, {**TRAIN, "epochs": 20, "batching": "full"}, evaluate=evaluate_split,
              device=torch.device("cpu"))
    out = root / "ddp"
    check(torchrun([str(graph_dir), str(teacher), str(out)], cwd=root, timeout=900,
                   script=Path(engine_matrix.__file__)))
    single = engine_matrix.run_matrix(graph_dir, teacher, root / "single", resume=False)
    return json.loads((out / "matrix.json").read_text()), single, out


def _mean(rows: list[dict], key: str) -> float:
    return sum(r[key] for r in rows) / len(rows)


def _seeds(result: dict) -> list[dict]:
    """A combination's runs: seed 0's, and EXTRA_SEEDS' for the mini-batch ones."""
    return [result, *result.get("seeds", [])]


def _seed_mean(result: dict, value) -> float:
    runs = _seeds(result)
    return sum(value(r) for r in runs) / len(runs)


def test_every_objective_and_mode_learns_under_torchrun(runs):
    ddp, _, out = runs
    assert ddp["world_size"] == 2
    # rank 0 alone wrote: each combination's RUN_DIR, no partial folder left, and the matrix
    mini = [c for c in COMBOS if c.endswith("-mini")]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["matrix.json", *COMBOS, *(f"{c}-resumed" for c in COMBOS), *(f"{c}-seed{s}" for c in mini for s in EXTRA_SEEDS),
         "1-n-mini-untrimmed", "1-n-mini-trimmed"])
    for combo in COMBOS:
        rows = ddp[combo]["log"]
        pretraining = combo.startswith("pretrain")
        assert [r["epoch"] for r in rows] == list(range(1, (PRETRAIN if pretraining else TRAIN)["epochs"] + 1))
        assert all(math.isfinite(r["loss"]) for r in rows), combo
        if pretraining:
            assert _mean(rows[-5:], "loss") < 0.9 * _mean(rows[:5], "loss"), combo
        else:  # items carry their group in their features (a mini-batch seed alone: 0.5 seen)
            assert _seed_mean(ddp[combo], lambda r: r["metrics"]["test"]["relations"]["item|in|group"]["hits@1"]) \
                > 0.5, combo


@pytest.mark.parametrize("combo", COMBOS)
def test_two_processes_match_one(combo, runs):
    ddp, single = runs[0][combo], runs[1][combo]
    if combo in FOLLOWS_ONE_PROCESS:
        assert [r["loss"] for r in ddp["log"]] == pytest.approx([r["loss"] for r in single["log"]], rel=0.02)
        tolerance = {"mrr": 0.05, "hits@1": 0.05}
    else:
        # Other draws, the same objective: an epoch's loss swings (mini-batch pretraining's from 0.7
        # to 3 here), their mean over the run less (full batch: within 15% seen; mini-batch, where
        # each rank also samples its own neighbourhoods, 0.83x-1.38x per seed, so over 3 seeds); a
        # share weighted x2 or x1/2 would be 50% off. The metrics move by a few of a split's 24
        # ranked queries (12 edges, both directions; BCE on the full graph: 5 of them, test hits@1
        # 0.71 against 0.92; one mini-batch seed's test MRR 0.67 against 0.92, over 3 seeds 0.87 / 0.92).
        assert len(_seeds(ddp)) == len(_seeds(single)) == (1 + len(EXTRA_SEEDS) if combo.endswith("-mini") else 1)
        assert _seed_mean(ddp, lambda r: _mean(r["log"], "loss")) == pytest.approx(
            _seed_mean(single, lambda r: _mean(r["log"], "loss")), rel=0.25)
        tolerance = {"mrr": 0.2, "hits@1": 0.3}
    for split in ("valid", "test") if "metrics" in ddp else ():
        for key, tol in tolerance.items():
            got, want = (_seed_mean(r, lambda r: r["metrics"][split]["overall"][key]) for r in (ddp, single))
            assert abs(got - want) <= tol, (split, key, got, want)


@pytest.mark.parametrize("where", ["torchrun", "one process"])
def test_trimmed_steps_compute_what_untrimmed_ones_do(where, runs):
    """With no draw whose shape depends on the rows computed, a run whose sampled subgraphs are
    trimmed per layer follows the untrimmed run, on 2 ranks (DDP over the trimmed autograd graph)
    as in one process."""
    trim = (runs[0] if where == "torchrun" else runs[1])["trim"]
    losses = [[r["loss"] for r in trim[key]["log"]] for key in ("untrimmed", "trimmed")]
    assert len(losses[0]) == 4
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)
    for split in ("valid", "test"):
        assert trim["trimmed"]["metrics"][split]["overall"]["mrr"] == pytest.approx(
            trim["untrimmed"]["metrics"][split]["overall"]["mrr"], abs=1e-4)


@pytest.mark.parametrize("combo", COMBOS)
def test_killed_and_resumed_under_torchrun_ends_where_the_uninterrupted_run_does(combo, runs):
    ddp = runs[0][combo]
    resumed = ddp["resumed"]
    assert resumed["checkpoint_epoch"] == KILL_AT - 1
    # every rank resumes its own RNG too (mini-batch shares draw differently), so bit for bit
    assert resumed["log"] == ddp["log"]
    assert resumed.get("metrics") == ddp.get("metrics")
