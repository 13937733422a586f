"""What a user gets with no config: every shared data set built from a plain manifest, `train` with no `--config`.

Each data set is written as a manifest with only nodes, features and edges (benchmarks/datasets.py:
no encoder choices, no kNN lines, no training settings), built with mmgraph's defaults, and trained
through `train_run` with no settings at all, so the recipe (mmgraph/train/recipe.py) chooses. The
table puts the no-config result beside the hand-tuned config of benchmarks/configs/ (when
`--tuned` runs it), PyKEEN's numbers on this machine and the published ones (both from
../shared/TARGETS.md, cited, not rerun here), with wall times and the spread over seeds. For the
digits graph the cold-start row links clips of a speaker the graph never saw (lucas) through
`predict --items`.

    python benchmarks/defaults.py --only umls,kinships,cora,digits --seeds 0,1,2 --json defaults.json
    python benchmarks/defaults.py --only wn18rr --seeds 0
    python benchmarks/defaults.py --only digits_full,emoji,emoji_nosplit --seeds 0,1,2   # emoji: Debian packages
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

# Before torch loads, as the CLI does (mmgraph/runtime.py: a run without it on a loaded machine
# had UMLS at 126 s an epoch, against about 3 s with the CLI).
from mmgraph.runtime import setup_process  # noqa: E402

setup_process()

import torch  # noqa: E402
from common import load_bench_datasets  # noqa: E402

_writers = load_bench_datasets()
CONFIGS = Path(__file__).resolve().parent / "configs"

# From ../shared/TARGETS.md (cited; PyKEEN measured there 2026-11-27 on this machine).
REFERENCE = {
    "umls": {"metric": "mrr", "target": 0.94, "budget_s": 300, "pykeen": "TuckER .900 (305 s)",
             "published": "ConvE .94"},
    "kinships": {"metric": "mrr", "target": 0.85, "budget_s": 600, "pykeen": "RotatE .844 (333 s)",
                 "published": "ConvE .83"},
    "wn18rr": {"metric": "mrr", "target": 0.47, "budget_s": 2700, "pykeen": "-",
               "published": "ComplEx-N3 r100 .47, RotatE .477"},
    "umls_text": {"metric": "mrr", "target": 0.94, "budget_s": 300, "pykeen": "-", "published": "-"},
    "wn18rr_text": {"metric": "mrr", "target": 0.47, "budget_s": 3600, "pykeen": "-", "published": "SimKGC .666"},
    "cora": {"metric": "auc", "target": 0.92, "budget_s": 300, "pykeen": "-",
             "published": "VGAE 91.4/92.6; PyG GAE here 90.8/91.1"},
    "digits": {"metric": "hits@1", "target": 0.95, "budget_s": 600, "pykeen": "-", "published": "(our bar)"},
    "digits_full": {"metric": "hits@1", "target": 0.95, "budget_s": 600, "pykeen": "-", "published": "(our bar)"},
    # not in ../shared/data: Unicode's emoji from Debian packages (emoji_graph.py), no target set
    "emoji": {"metric": "mrr", "target": None, "budget_s": 600, "pykeen": "-", "published": "-"},
    "emoji_nosplit": {"metric": "mrr", "target": None, "budget_s": 600, "pykeen": "-", "published": "-"},
}


def run_one(name: str, seed: int, work: Path, *, tuned: bool) -> dict:
    from mmgraph.eval.evaluate import evaluate_split
    from mmgraph.train.run import train_run

    graph_dir = _writers.build_graph_dir(_writers.write_manifest(name, work), work / name / "graph")
    settings = {"seed": seed}
    if tuned:
        config = CONFIGS / f"{name}.yaml"
        if not config.is_file():
            return {}
        from mmgraph.train.config import read_config_yaml

        settings = {**read_config_yaml(config), "seed": seed}
    run_dir = work / name / f"run-{'tuned' if tuned else 'default'}-{seed}"
    started = time.perf_counter()
    metrics = train_run(graph_dir, run_dir, settings, evaluate=evaluate_split, device=torch.device("cpu"),
                        force=True)
    row = {"dataset": name, "seed": seed, "config": "tuned" if tuned else "none", "wall_s": time.perf_counter() - started,
           "valid": metrics["valid"]["overall"], "test": metrics["test"]["overall"],
           "relations": {k: {m: v[m] for m in ("mrr", "hits@1")} for k, v in metrics["test"]["relations"].items()}}
    if name == "digits":
        from cold_start import cold_start_scores, write_items_table

        row["cold_start_hits@1"] = cold_start_scores(run_dir, write_items_table(work / "lucas"))["hits@1"]
    return row


def _mean(rows: list[dict], get) -> str:
    values = [get(r) for r in rows]
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def table(rows: list[dict]) -> str:
    lines = ["| data | config | seeds | valid MRR | test MRR | Hits@1 | Hits@10 | AUC / AP | extra | wall s | "
             "target | PyKEEN here | published |", "|" + "---|" * 13]
    for (name, config) in dict.fromkeys((r["dataset"], r["config"]) for r in rows):
        group = [r for r in rows if r["dataset"] == name and r["config"] == config]
        ref = REFERENCE[name]
        extra = ""
        if len(group[0]["relations"]) <= 4:   # a few relations: each one's MRR / Hits@1
            extra = "; ".join(f"{k.split('|')[1]} {_mean(group, lambda r, k=k: r['relations'][k]['mrr'])} / "
                              f"{_mean(group, lambda r, k=k: r['relations'][k]['hits@1'])}"
                              for k in group[0]["relations"])
            if "cold_start_hits@1" in group[0]:
                extra += f"; cold start {_mean(group, lambda r: r['cold_start_hits@1'])}"
        lines.append(" | ".join([
            f"| {name}", config, ",".join(str(r["seed"]) for r in group), _mean(group, lambda r: r["valid"]["mrr"]),
            _mean(group, lambda r: r["test"]["mrr"]), _mean(group, lambda r: r["test"]["hits@1"]),
            _mean(group, lambda r: r["test"]["hits@10"]),
            f"{_mean(group, lambda r: 100 * r['test']['auc'])} / {_mean(group, lambda r: 100 * r['test']['ap'])}",
            extra or "-", f"{max(r['wall_s'] for r in group):.0f}",
            "-" if ref["target"] is None else f"{ref['metric']} >= {ref['target']} in {ref['budget_s'] // 60} min",
            ref["pykeen"], ref["published"]])
            + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="umls,kinships,cora,digits",
                        help="comma-separated of " + ", ".join(REFERENCE))
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    parser.add_argument("--tuned", action="store_true", help="also run benchmarks/configs/NAME.yaml")
    parser.add_argument("--work", type=Path, default=Path("/tmp/mmgraph-defaults"))
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    rows = []
    for name in [n.strip() for n in args.only.split(",") if n.strip()]:
        for tuned in (False, True) if args.tuned else (False,):
            for seed in [int(s) for s in args.seeds.split(",")]:
                row = run_one(name, seed, args.work, tuned=tuned)
                if row:
                    rows.append(row)
                    print(json.dumps(row, default=float), flush=True)
                    if args.json:
                        args.json.write_text(json.dumps(rows, indent=1, default=float))
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
