"""Cold start: clip -says-> word for clips of a speaker the model never saw (TARGETS.md: Hits@1 >= .80).

The demo graph (datasets/digits-av: speakers george, jackson, nicolas) is built with mmgraph and
trained with the demo settings, varied per row below; then the takes 0-15 of speaker lucas
(../shared/data/fsdd/recordings, never in the graph) are written as an items table and linked
through the real `predict --items` path (`mmgraph.eval.predict.predict_items`). Hits@1 is the
share of lucas's clips whose top-1 word is the spoken digit, MRR the mean of 1 / its rank.

New clips join the graph by their `similar_sound` kNN edges (`mmgraph.eval.cold_start`).
Rows (each over the given seeds; mean and spread):
- `demo`: the demo settings as they are;
- `demo_edgeless`: the same runs, new clips embedded with no edge at all (features only);
- `cold_start`: the same plus `cold_start_ratio: 0.3` (in each step 30 % of the supervised clips
  keep only their kNN edges, as a new clip has);
- `inductive`: plus `inductive: 0.1` as well (10 % of the training clips leave the training graph;
  their links validate, so early stopping watches cold-start quality);
- `learned_only`: no media features (learned embeddings only): a new clip has nothing to go on;
- `student` / `distilled_student`: a feature-only student (`num_layers: 0`) without and with
  `--distill-from` the `cold_start` teacher of the same seed (full runs only).

    python benchmarks/cold_start.py --seeds 0,1,2 --json cold_start.json
    python benchmarks/cold_start.py --seeds 0 --quick    # 60 epochs, no student rows
    python benchmarks/cold_start.py --held-out george --only demo,inductive   # another speaker out

`--held-out SPEAKER` trains on the demo graph's variant without that speaker (lucas's clips take
its place, `transfer_data.write_speaker_variant`), so the settings can be chosen on speakers other
than the one they are reported on.

The lead's benchmarks/transfer.py calls `measure_cold_start(seeds=..., quick=..., work=...)`.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from transfer_data import FSDD_SPEAKERS, WORDS, write_speaker_variant

ROOT = Path(__file__).resolve().parents[1]
FSDD = ROOT.parent / "shared" / "data" / "fsdd" / "recordings"
HELD_OUT_SPEAKER = "lucas"  # the speaker the embedded demo graph leaves out

# Variants of the demo's settings (mmgraph.train.presets.DEMO_TRAIN); nested "model" keys are merged.
VARIANTS: dict[str, dict] = {
    "demo": {},
    "cold_start": {"cold_start_ratio": 0.3},
    "inductive": {"inductive": 0.1, "cold_start_ratio": 0.3},
    "learned_only": {"use_features": False},
}
STUDENT = {"model": {"num_layers": 0}}


def settings_for(changes: dict, *, epochs: int | None) -> dict:
    from mmgraph.train.presets import DEMO_TRAIN

    out = {**DEMO_TRAIN, **{k: v for k, v in changes.items() if k != "model"}}
    out["model"] = {**DEMO_TRAIN["model"], **changes.get("model", {})}
    if epochs is not None:
        out["epochs"] = epochs
    return out


def write_items_table(folder: Path, speaker: str = HELD_OUT_SPEAKER, takes=range(16)) -> Path:
    """clips.csv of the speaker's takes, paths relative to the table (as `predict --items` reads them)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["clip_id,path"]
    for digit in range(10):
        for take in takes:
            wav = FSDD / f"{digit}_{speaker}_{take}.wav"
            lines.append(f"{wav.stem},{os.path.relpath(wav, folder)}")
    table = folder / "clips.csv"
    table.write_text("\n".join(lines) + "\n")
    return table


def build_demo_graph(work: Path, held_out: str = HELD_OUT_SPEAKER) -> Path:
    """The demo graph (which leaves lucas out), or its variant that leaves `held_out` out instead."""
    from common import load_bench_datasets

    from mmgraph.train.presets import demo_dataset

    manifest = demo_dataset() / "manifest.yaml"
    if held_out != HELD_OUT_SPEAKER:
        manifest = write_speaker_variant(demo_dataset(), work / "dataset", held_out=held_out,
                                         recordings=FSDD) / "manifest.yaml"
    return load_bench_datasets().build_graph_dir(manifest, work / "graph")


def cold_start_scores(run_dir: Path, table: Path, *, join_graph: bool = True) -> dict[str, float]:
    """Hits@1 and MRR of the spoken digit among the 10 words, through `predict_items`."""
    from mmgraph.eval.predict import predict_items
    from mmgraph.train.run import load_run

    result = predict_items(load_run(run_dir), table, "clip", "says", k=len(WORDS), join_graph=join_graph)
    ranks = []
    for row in result["results"]:
        truth = WORDS[int(row["source"].split("_")[0])]
        order = [t["id"] for t in row["top"]]
        ranks.append(order.index(truth) + 1 if truth in order else len(WORDS) + 1)
    return {"hits@1": sum(r == 1 for r in ranks) / len(ranks), "mrr": sum(1 / r for r in ranks) / len(ranks)}


def _train(graph_dir: Path, run_dir: Path, settings: dict, seed: int, distill_from: Path | None = None) -> dict:
    from mmgraph.train.config import TrainConfig
    from mmgraph.eval.evaluate import evaluate_split
    from mmgraph.train.run import train_run

    config = TrainConfig.from_dict({**settings, "seed": seed}, source="cold_start")
    kwargs = {"distill_from": distill_from} if distill_from is not None else {}
    return train_run(graph_dir, run_dir, config, evaluate=evaluate_split, device=torch.device("cpu"), force=True,
                     **kwargs)


def _row(name: str, per_seed: list[dict], seeds: list[int], wall: float, speaker: str) -> dict:
    def stats(key):
        values = [r[key] for r in per_seed]
        return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)

    h_mean, h_std = stats("hits@1")
    m_mean, m_std = stats("mrr")
    t_mean, _ = stats("test_hits@1")
    return {"name": name, "hits@1": h_mean, "hits@1_std": h_std, "mrr": m_mean, "mrr_std": m_std,
            "test_hits@1": t_mean, "seeds": seeds, "per_seed": per_seed, "wall_s": wall,
            "speaker": speaker, "target_hits@1": 0.80}


def measure_cold_start(*, seeds: list[int], quick: bool, work: Path, variants: list[str] | None = None,
                       held_out: str = HELD_OUT_SPEAKER) -> list[dict]:
    """One row per variant: cold-start Hits@1 / MRR on the held-out speaker (mean, std over seeds),
    known-speaker test Hits@1."""
    if not FSDD.is_dir():
        raise FileNotFoundError(f"{FSDD}: the FSDD recordings are needed for the held-out speaker")
    torch.set_num_threads(1)
    work = Path(work)
    graph_dir = build_demo_graph(work, held_out)
    table = write_items_table(work / "items", speaker=held_out)
    epochs = 60 if quick else None
    names = variants or (["demo", "demo_edgeless"] + list(VARIANTS)[1:]
                         + ([] if quick else ["student", "distilled_student"]))
    rows = []
    for name in names:
        started, per_seed = time.perf_counter(), []
        for seed in seeds:
            run_dir = work / f"{name}-{seed}"
            teacher = None
            if name in ("student", "distilled_student"):
                settings = settings_for(STUDENT, epochs=epochs)
                if name == "distilled_student":
                    teacher = work / f"cold_start-{seed}"
                    if not (teacher / "model.pt").is_file():
                        _train(graph_dir, teacher, settings_for(VARIANTS["cold_start"], epochs=epochs), seed)
                    settings = {**settings, "distill_weight": 0.5, "distill_temperature": 2.0}
            else:
                settings = settings_for(VARIANTS.get(name, {}), epochs=epochs)
            if name == "demo_edgeless":  # the demo's runs, new clips given no edge at all
                run_dir = work / f"demo-{seed}"
                if not (run_dir / "model.pt").is_file():
                    _train(graph_dir, run_dir, settings, seed)
                metrics = json.loads((run_dir / "metrics.json").read_text())
            else:
                metrics = _train(graph_dir, run_dir, settings, seed, distill_from=teacher)
            scores = cold_start_scores(run_dir, table, join_graph=name != "demo_edgeless")
            scores["test_hits@1"] = metrics["test"]["relations"]["clip|says|word"]["hits@1"]
            scores["seed"] = seed
            per_seed.append(scores)
            print(f"{name} seed {seed}: cold-start hits@1 {scores['hits@1']:.3f} mrr {scores['mrr']:.3f}; "
                  f"known-speaker test hits@1 {scores['test_hits@1']:.3f}", file=sys.stderr, flush=True)
        rows.append(_row(name, per_seed, seeds, time.perf_counter() - started, held_out))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--quick", action="store_true",
                        help="60 epochs instead of the demo's 200, no student rows")
    parser.add_argument("--only", default=None, help="comma-separated variants")
    parser.add_argument("--held-out", default=HELD_OUT_SPEAKER, choices=FSDD_SPEAKERS,
                        help="the speaker left out of the graph (default lucas, as in the demo graph)")
    parser.add_argument("--work", type=Path, default=None, help="default /tmp/mmgraph-cold-start[-SPEAKER]")
    parser.add_argument("--json", type=Path, help="write the rows to this file")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    variants = [v.strip() for v in args.only.split(",")] if args.only else None
    work = args.work or Path("/tmp/mmgraph-cold-start" + ("" if args.held_out == HELD_OUT_SPEAKER
                                                          else f"-{args.held_out}"))
    rows = measure_cold_start(seeds=seeds, quick=args.quick, work=work, variants=variants,
                              held_out=args.held_out)
    for r in rows:
        print(f"{r['name']:<18} {r['speaker']} cold-start hits@1 {r['hits@1']:.3f} +- {r['hits@1_std']:.3f}  "
              f"mrr {r['mrr']:.3f}  known-speaker test hits@1 {r['test_hits@1']:.3f}  ({r['wall_s']:.0f} s)")
    if args.json:
        from mmgraph.utils import atomic_write_text

        atomic_write_text(args.json, json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    from mmgraph.runtime import setup_process

    setup_process()
    sys.exit(main())
