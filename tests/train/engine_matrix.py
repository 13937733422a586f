"""Every objective of the engine in both batching modes, one after another in one process group.

    torchrun --standalone --nproc-per-node=2 tests/train/engine_matrix.py GRAPH_DIR TEACHER_DIR OUT

trains each combination of COMBOS (1-N, BCE, distillation, pretraining x full, mini) into
OUT/<objective>-<mode> (or those of a 4th argument, comma-separated), then trains each again killed at epoch KILL_AT and resumed from its
checkpoint, and rank 0 writes OUT/matrix.json: per combination its log rows (without timings)
and, for the supervised objectives, its valid and test metrics. One launch pays torchrun's start
and imports (~40 s on a loaded 2-core machine) once for all of them.

Imported, `run_matrix` trains the same combinations in one process: what
tests/train/test_engine_ddp.py compares the launch with.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from mmgraph import distributed
from mmgraph.eval.evaluate import evaluate_split
from mmgraph.train import trainer
from mmgraph.train.pretrain import pretrain_run
from mmgraph.train.pretrain_config import PretrainConfig
from mmgraph.train.run import read_train_log, train_run
from mmgraph.train.sampler import HeteroNeighborSampler

MODEL = {"channels": 16, "num_layers": 1, "fusion_heads": 2}
# batch sizes that give every mini-batch epoch at least 2 steps, each split over the ranks
TRAIN = {"epochs": 12, "eval_every": 4, "patience": 50, "lr": 0.02, "batch_size": 8, "model": MODEL}
PRETRAIN = {"epochs": 30, "lr": 0.01, "batch_size": 4, "model": MODEL}   # 30: enough to see it learn
LOSSES = {"1-n": {"loss": "1-n"}, "bce": {"loss": "bce"}, "distill": {"loss": "1-n", "distill_weight": 0.5}}
OBJECTIVES = [*LOSSES, "pretrain"]
MODES = ["full", "mini"]
COMBOS = [f"{objective}-{mode}" for objective in OBJECTIVES for mode in MODES]
KILL_AT = 6   # the killed run's checkpoint is of epoch 5: past an evaluation (epoch 4), before the next


# Mini-batch ranks draw other samples than one process: their runs are compared over these seeds
# too (one seed's mean loss swung from 0.83x to 1.38x one process's across seeds 0-2).
EXTRA_SEEDS = (1, 2)
# No random draw whose shape depends on the rows computed (dropout, the variational noise):
# trimmed and untrimmed steps then compute the same numbers.
EXACT = {"model": {**MODEL, "dropout": 0.0, "feature_dropout": 0.0, "variational": False}, "epochs": 4,
         "eval_every": 4}


def train_one(combo: str, graph_dir: Path, teacher_dir: Path, out: Path, *, resume: bool = False,
              overrides: dict | None = None) -> dict:
    """One combination into `out`: {"log": rows without "seconds", "metrics": valid/test (supervised only)}."""
    objective, mode = combo.rsplit("-", 1)
    cpu = torch.device("cpu")
    if objective == "pretrain":
        config = PretrainConfig.from_dict({**PRETRAIN, "batching": mode, **(overrides or {})})
        rows = pretrain_run(graph_dir, out, config, device=cpu, resume=resume)
        return {"log": [{k: v for k, v in row.items() if k != "seconds"} for row in rows]}
    distill = {"distill_from": teacher_dir} if objective == "distill" else {}
    metrics = train_run(graph_dir, out, {**TRAIN, **LOSSES[objective], "batching": mode, **(overrides or {})},
                        evaluate=evaluate_split,
                        device=cpu, resume=resume, **distill)
    rows = distributed.current().on_main(lambda: read_train_log(out / "train_log.csv"))
    return {"log": [{k: v for k, v in row.items() if k != "seconds"} for row in rows], "metrics": metrics}


def killed_and_resumed(combo: str, graph_dir: Path, teacher_dir: Path, out: Path) -> dict:
    """`combo` stopped at the start of epoch KILL_AT (on every rank, as a kill of the launch would),
    then resumed from its checkpoint; the resumed run's result, and the epoch the checkpoint held."""
    real = trainer.run_epoch
    calls = {"n": 0}

    def dies(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == KILL_AT:
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    trainer.run_epoch = dies
    try:
        train_one(combo, graph_dir, teacher_dir, out)
        raise AssertionError(f"{combo}: the kill at epoch {KILL_AT} did not happen")
    except KeyboardInterrupt:
        pass
    finally:
        trainer.run_epoch = real
    checkpoint = out.parent / f".{out.name}.partial" / "checkpoint.pt"
    epoch = distributed.current().on_main(lambda: trainer.load_checkpoint(checkpoint)[0].epoch)
    return {**train_one(combo, graph_dir, teacher_dir, out, resume=True), "checkpoint_epoch": epoch}


def untrimmed_and_trimmed(graph_dir: Path, out: Path, combo: str = "1-n-mini") -> dict:
    """`combo` with EXACT settings, once with every sampled subgraph computed whole and once trimmed
    per layer (the default): {"untrimmed": result, "trimmed": result}."""
    real = HeteroNeighborSampler.sample

    def whole(self, *args, **kwargs):
        return real(self, *args, **kwargs)._replace(num_sampled_nodes=None)

    HeteroNeighborSampler.sample = whole
    try:
        untrimmed = train_one(combo, graph_dir, graph_dir, out / f"{combo}-untrimmed", overrides=EXACT)
    finally:
        HeteroNeighborSampler.sample = real
    return {"untrimmed": untrimmed, "trimmed": train_one(combo, graph_dir, graph_dir, out / f"{combo}-trimmed",
                                                         overrides=EXACT)}


def run_matrix(graph_dir: Path, teacher_dir: Path, out: Path, *, resume: bool = True,
               combos: list[str] = COMBOS) -> dict:
    """{combo: result} for every combination, with {combo: {"resumed": result}} when `resume`, the
    mini-batch ones again with EXTRA_SEEDS ({combo: {"seeds": [result, ...]}}), and
    {"trim": untrimmed_and_trimmed(...)}."""
    results = {combo: train_one(combo, graph_dir, teacher_dir, out / combo) for combo in combos}
    for combo in (c for c in combos if c.endswith("-mini")):
        results[combo]["seeds"] = [train_one(combo, graph_dir, teacher_dir, out / f"{combo}-seed{seed}",
                                             overrides={"seed": seed}) for seed in EXTRA_SEEDS]
    if resume:
        for combo in combos:
            results[combo]["resumed"] = killed_and_resumed(combo, graph_dir, teacher_dir, out / f"{combo}-resumed")
    results["trim"] = untrimmed_and_trimmed(graph_dir, out)
    return results


def main(argv: list[str]) -> int:
    graph_dir, teacher_dir, out = (Path(a) for a in argv[:3])
    combos = argv[3].split(",") if len(argv) > 3 else COMBOS   # a few of them, when debugging one
    with distributed.session(torch.device("cpu")) as ctx:
        results = run_matrix(graph_dir, teacher_dir, out, combos=combos)
        results["world_size"] = ctx.world_size
        if ctx.is_main:
            (out / "matrix.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
