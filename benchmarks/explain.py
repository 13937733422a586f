"""Faithfulness of `mmgraph explain` on the demo graph, over its test links (issue #16's bars).

The demo graph (datasets/digits-av) is built with mmgraph and trained with the demo settings
(`mmgraph.cli.demo.DEMO_TRAIN`); then every test link (clip-says-word and image-shows-word) is
explained with `explain_pair(k=3)` and measured:

- evidence: the score drop when its top-3 evidence edges are removed together, against the drop
  when 3 random edges of the same receptive field are removed (mean over `--draws` draws per
  link); bars: larger on average, and on at least 80 % of the links;
- modalities: the drop when the top modality (largest effect over both ends) is missing,
  against the drops of the others; by construction the effects *are* measured drops, so this
  row checks that the top modality is strictly ahead (no ties) and says by how much;
- `explain`'s score against `predict`'s for the same pair (largest difference), and seconds per pair.

    python benchmarks/explain.py                       # demo settings, seed 0
    python benchmarks/explain.py --seed 1 --json explain.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's mmgraph, also when run from elsewhere

EVIDENCE_SHARE_BAR = 0.8


def train_demo(work: Path, *, seed: int, epochs: int | None) -> Path:
    """Build the demo graph once under `work` and train the demo settings into `work/run`."""
    from common import load_bench_datasets

    from mmgraph.cli.demo import DEMO_TRAIN, demo_dataset
    from mmgraph.train.config import TrainConfig
    from mmgraph.eval.evaluate import evaluate_split
    from mmgraph.train.run import train_run

    graph_dir = load_bench_datasets().build_graph_dir(demo_dataset() / "manifest.yaml", work / "graph")
    settings = {**DEMO_TRAIN, "seed": seed, **({"epochs": epochs} if epochs else {})}
    train_run(graph_dir, work / "run", TrainConfig.from_dict(settings, source="demo settings"),
              evaluate=evaluate_split, device=torch.device("cpu"), force=True)
    return work / "run"


def measure(run_dir: Path, *, draws: int, seed: int) -> dict:
    """Per test link: explain, then the drops of the top-3 evidence and of random field edges."""
    from mmgraph.eval.explain import explain_pair
    from mmgraph.eval.pair_graph import PairGraph
    from mmgraph.eval.predict import predict_node
    from mmgraph.train.run import load_run

    run = load_run(run_dir)
    prepared = run.prepared()
    graph = PairGraph(run.model, prepared)
    generator = torch.Generator().manual_seed(seed)
    links = []
    for et in prepared.relations:
        test = prepared.split_edges_of(et, "test")
        for s, d in test.t().tolist():
            started = time.perf_counter()
            result = explain_pair(run.model, prepared, (et[0], graph.ids[et[0]][s]), et[1],
                                  (et[2], graph.ids[et[2]][d]), k=3)
            seconds = time.perf_counter() - started
            src, dst = (et[0], s), (et[2], d)
            score = result["score"]
            top = graph.edge_ids([(e["edge"], e["source"], e["target"]) for e in result["evidence"]])
            field = graph.field([src, dst]).candidates
            random_drops = []
            for _ in range(draws):
                pick = field[torch.randperm(field.numel(), generator=generator)[:3]]
                random_drops.append(score - graph.pair_score(et, src, dst, drop=pick))
            effects = sorted((m["effect"] for m in result["modalities"]), reverse=True)
            predicted = predict_node(run, f"{et[0]}:{graph.ids[et[0]][s]}", et[1], k=len(graph.ids[et[2]]))
            predict_score = next(t["score"] for t in predicted["results"][0]["top"] if t["id"] == result["target"])
            links.append({
                "relation": result["relation"], "source": result["source"], "target": result["target"],
                "score": score, "seconds": seconds, "field_edges": int(field.numel()),
                "top3_drop": score - graph.pair_score(et, src, dst, drop=top) if top.numel() else 0.0,
                "random3_drop": statistics.fmean(random_drops),
                "top_modality": effects[0], "other_modalities": effects[1:],
                "predict_diff": abs(score - predict_score),
            })
    return summarise(links)


def summarise(links: list[dict]) -> dict:
    """The numbers the README reports and the pass/fail of each bar."""
    n = len(links)
    top3 = statistics.fmean(r["top3_drop"] for r in links)
    rand3 = statistics.fmean(r["random3_drop"] for r in links)
    wins = sum(r["top3_drop"] > r["random3_drop"] for r in links) / n
    modality_wins = sum(all(r["top_modality"] > o for o in r["other_modalities"]) for r in links) / n
    others = [o for r in links for o in r["other_modalities"]]
    return {
        "links": n,
        "top3_drop_mean": top3, "random3_drop_mean": rand3, "top3_beats_random_share": wins,
        "evidence_pass": top3 > rand3 and wins >= EVIDENCE_SHARE_BAR,
        "top_modality_drop_mean": statistics.fmean(r["top_modality"] for r in links),
        "other_modality_drop_mean": statistics.fmean(others) if others else 0.0,
        "top_modality_ahead_share": modality_wins, "modality_pass": modality_wins == 1.0,
        "max_predict_diff": max(r["predict_diff"] for r in links),
        "seconds_per_pair_median": statistics.median(r["seconds"] for r in links),
        "seconds_per_pair_max": max(r["seconds"] for r in links),
        "field_edges_median": statistics.median(r["field_edges"] for r in links),
        "per_link": links,
    }


def format_summary(s: dict) -> str:
    ok = {True: "pass", False: "FAIL"}
    rows = [
        ("score drop, top-3 evidence edges removed (mean)", f"{s['top3_drop_mean']:.4f}", ""),
        ("score drop, 3 random field edges removed (mean)", f"{s['random3_drop_mean']:.4f}", ""),
        ("links where top-3 drop > random drop", f"{s['top3_beats_random_share']:.1%}",
         f"{ok[s['evidence_pass']]} (bars: larger mean, >= {EVIDENCE_SHARE_BAR:.0%})"),
        ("score drop, top modality missing (mean)", f"{s['top_modality_drop_mean']:.4f}", ""),
        ("score drop, any other modality missing (mean)", f"{s['other_modality_drop_mean']:.4f}", ""),
        ("links where the top modality is strictly ahead", f"{s['top_modality_ahead_share']:.1%}",
         ok[s["modality_pass"]]),
        ("largest |explain score - predict score|", f"{s['max_predict_diff']:.2e}",
         ok[s["max_predict_diff"] < 1e-4]),
        ("seconds per pair, median / max", f"{s['seconds_per_pair_median']:.2f} / {s['seconds_per_pair_max']:.2f}",
         f"(receptive field: median {s['field_edges_median']:.0f} edges)"),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"demo graph, {s['links']} test links"]
    lines += [f"  {name:<{width}}  {value:>12}  {note}".rstrip() for name, value, note in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="training seed (and of the random edges)")
    parser.add_argument("--epochs", type=int, default=None, help="override the demo's epochs")
    parser.add_argument("--draws", type=int, default=5, help="random 3-edge draws per link")
    parser.add_argument("--work", type=Path, default=Path("bench-explain"), help="graph, cache and run folder")
    parser.add_argument("--json", type=Path, default=None, help="write the summary (and every link) here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # an 800-node graph: thread start-up costs more than it saves
    run_dir = train_demo(args.work, seed=args.seed, epochs=args.epochs)
    summary = measure(run_dir, draws=args.draws, seed=args.seed)
    print(format_summary(summary))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0 if summary["evidence_pass"] and summary["modality_pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
