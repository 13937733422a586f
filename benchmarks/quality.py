"""Link-prediction quality against ../shared/TARGETS.md: UMLS, Kinships, WN18RR, Cora.

For each dataset: write its manifest (benchmarks/datasets.py), build the graph with mmgraph
(cached in the work folder), train with benchmarks/configs/NAME.yaml through `train_run`, and
report filtered MRR / Hits@1 / Hits@10 on the test split (both directions), AUC / AP for Cora,
the training wall time, the target and the published number. Nothing here is tuned on the test
split: configs are chosen on validation MRR (the trainer's early stopping reads valid only).

    python benchmarks/quality.py                              # umls, kinships, cora
    python benchmarks/quality.py --only umls --set lr=0.01 --set model.channels=512
    python benchmarks/quality.py --only wn18rr --time-cap 2700 --json wn18rr.json

`--time-cap S` stops training after S seconds (the dataset's wall-time budget by default) and
evaluates the best checkpoint reached so far, so a capped run still reports honest test numbers.
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import shutil
import signal
import sys
import time
from pathlib import Path

import torch
import yaml
from common import load_bench_datasets

_writers = load_bench_datasets()
DATASETS, build_graph_dir, write_manifest = _writers.DATASETS, _writers.build_graph_dir, _writers.write_manifest

CONFIGS = Path(__file__).resolve().parent / "configs"
DEFAULT_ONLY = ("umls", "kinships", "cora")

# TARGETS.md: target, wall-time budget (s), published reference. Only published papers' numbers
# are printed: nothing here runs PyKEEN, so its numbers are not a result of this script.
# Reference, not output (PyKEEN 1.11 on this machine, measured 2026-11-27, from TARGETS.md):
# UMLS TuckER .900 (305 s), RotatE .884 (216 s); Kinships RotatE .844 (333 s), TuckER .834 (334 s).
TARGETS = {
    "umls": {"metric": "mrr", "target": 0.94, "budget_s": 300,
             "published": "ConvE .94 MRR"},
    "kinships": {"metric": "mrr", "target": 0.85, "budget_s": 600,
                 "published": "ConvE .83 MRR"},
    "wn18rr": {"metric": "mrr", "target": 0.48, "budget_s": 2700,
               "published": "RotatE .477, CompGCN .479 MRR"},
    "wn18rr_text": {"metric": "mrr", "target": 0.55, "budget_s": 3600,
                    "published": "SimKGC .666 MRR (GPU)"},
    "cora": {"metric": "auc/ap", "target": (0.92, 0.93), "budget_s": 300,
             "published": "VGAE 91.4/92.6; GAE 91.0/92.0 AUC/AP"},
}


class TimeCapReached(Exception):
    """Raised from SIGALRM inside the training loop when the wall-time cap is up."""


def load_config(name: str, path: Path | None, overrides: list[str], quick: bool):
    """The dataset's YAML config with `--set a.b=value` overrides (values parsed as YAML)."""
    from mmgraph.train.config import TrainConfig

    own = CONFIGS / f"{name}.yaml"  # wn18rr_text has its own; else it shares wn18rr's
    path = path or (own if own.is_file() else CONFIGS / f"{name.removesuffix('_text')}.yaml")
    data = yaml.safe_load(path.read_text()) or {}
    for item in overrides:
        key, _, value = item.partition("=")
        target = data
        *parents, leaf = key.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        parsed = yaml.safe_load(value)
        if isinstance(parsed, str):  # YAML 1.1 reads 1e-5 (no dot) as a string
            try:
                parsed = float(parsed)
            except ValueError:
                pass
        target[leaf] = parsed
    if quick:  # a smoke run: a tenth of the epochs, evaluated at the end
        data["epochs"] = max(1, int(data.get("epochs", 200)) // 10)
        data["eval_every"] = min(int(data.get("eval_every", 5)), data["epochs"])
    return TrainConfig.from_dict(data, source=str(path)), data


def train_capped(graph_dir: Path, run_dir: Path, config, *, cap_s: float | None) -> tuple[dict, bool]:
    """`train_run`, stopped after `cap_s` seconds; then the best checkpointed state is evaluated."""
    from mmgraph.eval.evaluate import evaluate_split
    from mmgraph.train.run import train_run

    if not cap_s:
        return train_run(graph_dir, run_dir, config, evaluate=evaluate_split, device=torch.device("cpu"),
                         force=True), False

    def on_alarm(signum, frame):
        raise TimeCapReached

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, cap_s)
    try:
        return train_run(graph_dir, run_dir, config, evaluate=evaluate_split, device=torch.device("cpu"),
                         force=True), False
    except TimeCapReached:
        return evaluate_partial(graph_dir, run_dir, config), True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def evaluate_partial(graph_dir: Path, run_dir: Path, config) -> dict:
    """Valid and test metrics of the best state in the checkpoint a capped run left behind."""
    from mmgraph.data.graph_io import load_graph
    from mmgraph.eval.evaluate import evaluate_split
    from mmgraph.train.prepare import prepare_graph
    from mmgraph.train.trainer import build_model, embed_for_eval, load_checkpoint

    checkpoint = run_dir.parent / f".{run_dir.name}.partial" / "checkpoint.pt"
    if not checkpoint.is_file():
        return {"note": "time cap reached before the first epoch ended"}
    state, blob = load_checkpoint(checkpoint)
    prepared = prepare_graph(load_graph(graph_dir), relations=config.relations, split_ratios=config.split_ratios,
                             seed=config.seed, use_features=config.use_features)
    model = build_model(config, prepared)
    model.load_state_dict(state.best_state if state.best_state is not None else blob["model"])
    z = embed_for_eval(model, prepared, torch.device("cpu"))
    metrics = {split: evaluate_split(model, prepared, z, split=split, seed=config.seed)
               for split in ("valid", "test")}
    metrics["capped"] = {"epochs_done": state.epoch, "best_epoch": state.best_epoch,
                         "log": [r for r in state.log_rows if "valid_mrr" in r]}
    return metrics


def run_dataset(name: str, args) -> dict:
    work = args.work
    started = time.perf_counter()
    graph_dir = build_graph_dir(write_manifest(name, work), work / name / "graph")
    built = time.perf_counter()
    config, raw = load_config(name, args.config if args.only and len(args.only) == 1 else None,
                              args.set, args.quick)
    run_dir = work / name / f"run-{args.tag}"
    cap = args.time_cap if args.time_cap is not None else TARGETS[name]["budget_s"]
    metrics, capped = train_capped(graph_dir, run_dir, config, cap_s=cap)
    trained = time.perf_counter()
    test = (metrics.get("test") or {}).get("overall", {})
    valid = (metrics.get("valid") or {}).get("overall", {})
    row = {"dataset": name, "tag": args.tag, "config": raw, "build_s": round(built - started, 1),
           "wall_s": round(trained - built, 1), "capped": capped,
           "valid_mrr": valid.get("mrr"), "mrr": test.get("mrr"), "hits@1": test.get("hits@1"),
           "hits@10": test.get("hits@10"), "auc": test.get("auc"), "ap": test.get("ap"),
           **{k: TARGETS[name][k] for k in ("metric", "target", "budget_s", "published")}}
    if "capped" in metrics:
        row["epochs_done"] = metrics["capped"]["epochs_done"]
        row["best_epoch"] = metrics["capped"]["best_epoch"]
        row["valid_curve"] = [[r["epoch"], round(r["valid_mrr"], 4)] for r in metrics["capped"]["log"]]
    elif (run_dir / "train_log.csv").is_file():
        with open(run_dir / "train_log.csv") as f:
            log_rows = list(csv.DictReader(f))
        row["epochs_done"] = len(log_rows)
        row["valid_curve"] = [[int(r["epoch"]), round(float(r["valid_mrr"]), 4)] for r in log_rows if r["valid_mrr"]]
    row["met"] = met_target(row)
    if not args.keep_runs:
        shutil.rmtree(run_dir, ignore_errors=True)
    return row


def met_target(row: dict) -> bool | None:
    if row.get("mrr") is None:
        return None
    in_time = row["wall_s"] <= row["budget_s"]
    if row["metric"] == "auc/ap":
        return in_time and row["auc"] >= row["target"][0] and row["ap"] >= row["target"][1]
    return in_time and row["mrr"] >= row["target"]


def format_table(rows: list[dict]) -> str:
    head = ("dataset", "MRR", "Hits@1", "Hits@10", "AUC", "AP", "wall s", "target", "met", "published")
    lines = [" | ".join(head)]

    def num(v, scale=1.0):
        return "-" if v is None else f"{v * scale:.3f}" if scale == 1.0 else f"{v * scale:.1f}"

    for r in rows:
        target = (f"AUC/AP >= {r['target'][0] * 100:.0f}/{r['target'][1] * 100:.0f}" if r["metric"] == "auc/ap"
                  else f"MRR >= {r['target']:.2f}") + f" in {r['budget_s'] // 60} min"
        wall = f"{r['wall_s']:.0f}" + (" (capped)" if r.get("capped") else "")
        lines.append(" | ".join([f"{r['dataset']}[{r['tag']}]", num(r["mrr"]), num(r["hits@1"]), num(r["hits@10"]),
                                 num(r["auc"], 100), num(r["ap"], 100), wall, target,
                                 {True: "yes", False: "no", None: "-"}[r["met"]], r["published"]]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
                        help=f"comma-separated datasets of {', '.join(DATASETS)} "
                             f"(default {','.join(DEFAULT_ONLY)})")
    parser.add_argument("--quick", action="store_true", help="a tenth of the epochs (smoke run)")
    parser.add_argument("--json", type=Path, help="append the result rows to this JSON file")
    parser.add_argument("--work", type=Path, default=Path("/tmp/mmgraph-quality"),
                        help="where manifests, graphs and runs go (default /tmp/mmgraph-quality)")
    parser.add_argument("--config", type=Path, help="a TrainConfig YAML instead of configs/NAME.yaml "
                                                    "(with a single --only dataset)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set lr=0.01 --set model.channels=512")
    parser.add_argument("--time-cap", type=float, help="stop training after this many seconds (default: the dataset's "
                             "TARGETS.md wall time; 0: no cap) and evaluate the best checkpoint so far")
    parser.add_argument("--tag", default="default", help="names this configuration in the table and JSON")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: on a shared 2-core "
                        "machine, 2 threads made small ops up to 80x slower)")
    parser.add_argument("--keep-runs", action="store_true", help="keep the run folders (model.pt, logs)")
    args = parser.parse_args(argv)
    args.only = args.only or list(DEFAULT_ONLY)
    unknown = [n for n in args.only if n not in DATASETS]
    if unknown:
        parser.error(f"unknown dataset(s) {unknown}; known: {', '.join(DATASETS)}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.only:
        print(f"== {name} [{args.tag}]", flush=True)
        rows.append(run_dataset(name, args))
        print(format_table(rows[-1:]), flush=True)
    print("\n" + format_table(rows))
    if args.json:
        previous = json.loads(args.json.read_text()) if args.json.is_file() else []
        args.json.write_text(json.dumps(previous + rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
