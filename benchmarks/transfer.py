"""Knowledge transfer on the cross-media digits graph: pretrained-then-fine-tuned vs from scratch.

    python benchmarks/transfer.py [--quick] [--seeds 0,1,2] [--only few_shot,node_types] [--json FILE]

Sections (`SECTIONS`; each is a function `(args) -> rows`, so another measurement plugs in as
one more entry):

- `few_shot`: digits-av with 10% of the `says` training links (drawn per word and seed; valid
  and test unchanged). `mmgraph pretrain` on that graph (no relation labels; the held-out
  `says`/`shows` edges never seen), then `train --init`, against `train` from scratch.
- `node_types`: pretrain on digits-av without the image node type (clips, words, speakers),
  fine-tune on the full graph where images join, against the same training from scratch.
- `cold_start`: train on the demo graph (speakers george, jackson, nicolas), then link the clips
  of lucas, a speaker held out of the graph, through `predict --items` (`cold_start.py`, where
  the variants are listed: kNN-joined vs edge-less new items, cold-start training options, a
  feature-only student with and without distillation).

Both use the demo's training settings (`mmgraph.train.presets.DEMO_TRAIN`) for every run; the
pretraining uses the same model settings. Rows (`benchmarks/common.py`): `ours_s` is the wall
time of pretraining + fine-tuning, `baseline_s` of training from scratch, plus test metrics per
seed and their mean and standard deviation. `--quick`: one seed, a fifth of the epochs.
"""
from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml

from common import load_bench_datasets, make_row, write_rows
from transfer_data import DIGITS_AV, write_variant

from mmgraph.train.presets import DEMO_TRAIN
from mmgraph.train.config import TrainConfig
from mmgraph.train.pretrain import pretrain_run
from mmgraph.train.pretrain_config import PretrainConfig
from mmgraph.train.run import train_run
from mmgraph.eval.evaluate import evaluate_split


build_graph_dir = load_bench_datasets().build_graph_dir

SAYS, SHOWS = "clip|says|word", "image|shows|word"
PRETRAIN = {"epochs": 100, "lr": 0.003, "held_out_relations": ["says", "shows"]}
FEW_SHOT_FRACTION = 0.1


def train_config(args, seed: int, **changes) -> TrainConfig:
    settings = {**DEMO_TRAIN, "seed": seed, "freeze_epochs": args.freeze_epochs, **changes}
    if args.quick:
        settings["epochs"] = DEMO_TRAIN["epochs"] // 5
    return TrainConfig.from_dict(settings, source="transfer benchmark")


def pretrain_config(args, seed: int) -> PretrainConfig:
    settings = {**PRETRAIN, "seed": seed, "model": DEMO_TRAIN["model"], **args.pretrain_set}
    if args.quick:
        settings["epochs"] = PRETRAIN["epochs"] // 5
    return PretrainConfig.from_dict(settings, source="transfer benchmark")


def compare(args, name: str, pretrain_graph: Path, graph: Path, seed: int) -> dict:
    """Pretrain on one graph, fine-tune on another, and train from scratch on it: test metrics, seconds."""
    runs = args.work / "runs" / f"{name}-{seed}"
    device = torch.device(args.device)
    started = time.perf_counter()
    pretrain_run(pretrain_graph, runs / "pretrain", pretrain_config(args, seed), device=device, force=True)
    tuned = train_run(graph, runs / "fine-tuned", train_config(args, seed), evaluate=evaluate_split,
                      device=device, force=True,
                      init=runs / "pretrain")
    middle = time.perf_counter()
    scratch = train_run(graph, runs / "scratch", train_config(args, seed, freeze_epochs=0),
                        evaluate=evaluate_split, device=device,
                        force=True)
    ended = time.perf_counter()
    return {"seed": seed, "ours_s": middle - started, "baseline_s": ended - middle,
            "ours": tuned["test"]["relations"], "baseline": scratch["test"]["relations"]}


def summarise(section: str, results: list[dict], relations: list[str], note: str) -> list[dict]:
    """One row per relation: mean and spread of test MRR / Hits@1 over seeds, both arms."""
    rows = []
    for rel in relations:
        stats = {}
        for arm in ("ours", "baseline"):
            for metric in ("mrr", "hits@1"):
                values = [r[arm][rel][metric] for r in results]
                stats[f"{arm}_{metric}"] = round(statistics.mean(values), 4)
                stats[f"{arm}_{metric}_sd"] = round(statistics.stdev(values), 4) if len(values) > 1 else 0.0
                stats[f"{arm}_{metric}_per_seed"] = [round(v, 4) for v in values]
        rows.append(make_row(f"{section}.{rel}", statistics.mean(r["ours_s"] for r in results),
                             "from scratch", statistics.mean(r["baseline_s"] for r in results),
                             section=section, relation=rel, seeds=[r["seed"] for r in results], note=note,
                             **stats))
    return rows


def few_shot(args) -> list[dict]:
    results = []
    for seed in args.seeds:
        variant = write_variant(DIGITS_AV, args.work / "variants" / f"few-shot-{seed}",
                                says_fraction=FEW_SHOT_FRACTION, seed=seed)
        graph = build_graph_dir(variant / "manifest.yaml", args.work / "graphs" / f"few-shot-{seed}")
        results.append(compare(args, "few-shot", graph, graph, seed))
    note = f"{FEW_SHOT_FRACTION:.0%} of says training links; pretrained on the same graph"
    return summarise("few_shot", results, [SAYS, SHOWS], note)


def node_types(args) -> list[dict]:
    variant = write_variant(DIGITS_AV, args.work / "variants" / "no-image", drop_node_type="image")
    source = build_graph_dir(variant / "manifest.yaml", args.work / "graphs" / "no-image")
    full = build_graph_dir(DIGITS_AV / "manifest.yaml", args.work / "graphs" / "full")
    results = [compare(args, "node-types", source, full, seed) for seed in args.seeds]
    return summarise("node_types", results, [SHOWS, SAYS], "pretrained without images; fine-tuned with them")


def cold_start(args) -> list[dict]:
    """Clips of a speaker held out of the graph, linked through `predict --items` (cold_start.py)."""
    from cold_start import measure_cold_start

    rows = measure_cold_start(seeds=args.seeds, quick=args.quick, work=args.work / "cold-start")
    return [{**r, "section": "cold_start",
             "note": f"{r['speaker']} Hits@1 {r['hits@1']:.3f} ± {r['hits@1_std']:.3f}, MRR {r['mrr']:.3f}; "
                     f"known-speaker test Hits@1 {r['test_hits@1']:.3f} (target {r['target_hits@1']:.2f})"}
            for r in rows]


SECTIONS = {"few_shot": few_shot, "node_types": node_types, "cold_start": cold_start}


def format_table(rows: list[dict]) -> str:
    head = f"{'section':<11} {'relation':<17} {'pretrained MRR':>15} {'Hits@1':>15} {'scratch MRR':>15} " \
           f"{'Hits@1':>15} {'gain H@1':>9}"
    lines = [head, "-" * len(head)]
    for r in rows:
        if "ours_mrr" not in r:  # a section with rows of its own shape: name and note
            lines.append(f"{r.get('section', '-'):<11} {r['name']:<17} {r.get('note', '')}")
            continue

        def cell(arm, metric):
            return f"{r[f'{arm}_{metric}']:.3f} ± {r[f'{arm}_{metric}_sd']:.3f}"
        lines.append(f"{r['section']:<11} {r['relation']:<17} {cell('ours', 'mrr'):>15} {cell('ours', 'hits@1'):>15} "
                     f"{cell('baseline', 'mrr'):>15} {cell('baseline', 'hits@1'):>15} "
                     f"{r['ours_hits@1'] - r['baseline_hits@1']:>+9.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one seed, a fifth of the epochs (smoke run)")
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",") if x.strip()], default=None,
                        help="comma-separated seeds (default 0,1,2; --quick: 0)")
    parser.add_argument("--only", type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
                        default=list(SECTIONS), help=f"sections of {', '.join(SECTIONS)} (default all)")
    parser.add_argument("--freeze-epochs", type=int, default=0, help="freeze_epochs of the fine-tuning runs")
    parser.add_argument("--pretrain-set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a PretrainConfig value (YAML value), e.g. --pretrain-set contrastive_weight=0")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, help="write the result rows to this file")
    parser.add_argument("--work", type=Path, default=Path("/tmp/mmgraph-transfer"),
                        help="variants, graphs (built once, feature cache shared) and runs")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args(argv)
    args.seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    args.pretrain_set = {k: yaml.safe_load(v) for k, _, v in (item.partition("=") for item in args.pretrain_set)}
    unknown = [s for s in args.only if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {unknown}; known: {', '.join(SECTIONS)}")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.only:
        started = time.perf_counter()
        section_rows = SECTIONS[name](args)
        print(f"== {name}: {time.perf_counter() - started:.0f} s", flush=True)
        print(format_table(section_rows), flush=True)
        rows += section_rows
    print("\n" + format_table(rows))
    if args.json:
        write_rows(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
