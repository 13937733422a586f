"""`mmgraph explain`: why a link is predicted, as a short table, JSON (`--json`) or a picture (`--png`)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from mmgraph.errors import InputError


def add_parser(sub, common) -> None:
    """Add the `explain` subcommand to the main parser's subparsers (dispatched by `handler`)."""
    p = sub.add_parser("explain", help="why a link is predicted: modality effects, evidence edges, similar links")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--node", required=True, metavar="TYPE:ID",
                   help="the queried node; with --items, the id of one item of the table")
    p.add_argument("--relation", required=True, metavar="R")
    p.add_argument("--target", default=None, metavar="TYPE:ID", help="the other end (default: the top prediction)")
    p.add_argument("--items", default=None, metavar="TABLE", help="brand-new items, as `predict --items`")
    p.add_argument("--type", default=None, dest="node_type", metavar="TYPE", help="node type of the --items")
    p.add_argument("-k", type=int, default=5, help="evidence edges and similar links to list (default 5)")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="print the explanation as JSON")
    p.add_argument("--png", default=None, metavar="FILE", help="draw the pair, its evidence and modality shares")
    common(p)
    p.set_defaults(handler=cmd_explain)


def cmd_explain(args: argparse.Namespace) -> int:
    from mmgraph.eval.explain import explain_pair
    from mmgraph.train.run import load_run
    from mmgraph.utils import resolve_device

    if args.items and not args.node_type:
        raise InputError("explain: --items needs --type TYPE")
    if args.node_type and not args.items:
        raise InputError("explain: --type goes with --items TABLE")
    if args.k < 1:
        raise InputError("-k must be >= 1")
    run = load_run(args.run_dir)
    items = None
    node = args.node
    if args.items:
        from mmgraph.eval.predict import encode_items

        items = encode_items(run, args.items, args.node_type)
        node_id = node.split(":", 1)[1] if node.startswith(f"{args.node_type}:") else node
        if node_id not in items.ids:
            raise InputError(f"--node: no item {node_id!r} in {args.items} (items: {items.ids[:5]}...)")
        node = (args.node_type, node_id)
    result = explain_pair(run.model, run.prepared(), node, args.relation, args.target, k=args.k,
                          device=resolve_device(args.device), items=items)
    print(json.dumps(result, indent=2) if args.json else format_explanation(result))
    if args.png:
        plot_explanation(result, Path(args.png))
    return 0


def format_explanation(result: dict) -> str:
    """The explanation as a few short tables (what `--json` prints, rounded)."""
    lines = [f"{result['relation']}: {result['source']} -> {result['target']}  score {result['score']:.3f}", "",
             "modalities (score drop when the feature is missing):",
             f"  {'end':<7} {'feature':<16} {'effect':>8} {'share':>6}"]
    for m in result["modalities"]:
        lines.append(f"  {m['end']:<7} {m['feature']:<16} {m['effect']:>8.4f} {m['share']:>6.2f}")
    lines += ["", "evidence (score drop when the message edge is removed):"]
    if not result["evidence"]:
        lines.append("  (no message edge lowers the score when removed)")
    for e in result["evidence"]:
        lines.append(f"  {e['edge']:<28} {e['source']} -> {e['target']:<20} {e['effect']:>8.4f}")
    lines += ["", "similar training links (mean cosine of the ends):"]
    for s in result["similar_links"]:
        lines.append(f"  {s['source']} -> {s['target']:<20} {s['similarity']:>6.3f}")
    return "\n".join(lines)


def plot_explanation(result: dict, path: Path) -> None:
    """The pair (dashed), its evidence edges (width by effect) and each end's modality shares."""
    import math

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    src_type, _, dst_type = result["relation"].split("|")
    pair = {(src_type, result["source"]): (0.0, 0.0), (dst_type, result["target"]): (3.0, 0.0)}
    pos = dict(pair)
    others = []
    for e in result["evidence"]:
        a, _, b = e["edge"].split("|")
        for node in ((a, e["source"]), (b, e["target"])):
            if node not in pos and node not in others:
                others.append(node)
    for i, node in enumerate(others):  # on a circle around the pair, away from its two ends
        angle = math.pi / 2 + 2 * math.pi * (i + 0.5) / max(len(others), 1)
        pos[node] = (1.5 + 2.2 * math.cos(angle), 1.6 * math.sin(angle))
    fig, (ax, bars) = plt.subplots(1, 2, figsize=(10, 4.2), gridspec_kw={"width_ratios": [2, 1]})
    top = max((e["effect"] for e in result["evidence"]), default=1.0) or 1.0
    for e in result["evidence"]:
        a, _, b = e["edge"].split("|")
        (x0, y0), (x1, y1) = pos[(a, e["source"])], pos[(b, e["target"])]
        ax.plot([x0, x1], [y0, y1], color="tab:orange", lw=0.8 + 5 * e["effect"] / top, alpha=0.8, zorder=1)
        ax.annotate(f"{e['effect']:.3g}", ((x0 + x1) / 2, (y0 + y1) / 2), fontsize=7, color="tab:orange")
    (x0, y0), (x1, y1) = pair.values()
    ax.plot([x0, x1], [y0, y1], ls="--", color="tab:blue", lw=2, zorder=1)
    ax.annotate(f"score {result['score']:.3f}", (1.5, 0.1), ha="center", color="tab:blue")
    for node, (x, y) in pos.items():
        ax.scatter([x], [y], s=260 if node in pair else 120, color="tab:blue" if node in pair else "lightgrey",
                   edgecolor="black", zorder=2)
        ax.annotate(f"{node[0]}:{node[1]}", (x, y - 0.28), ha="center", fontsize=8)
    ax.set_title(f"{result['relation']}: evidence edges (width by effect)")
    ax.set_axis_off()
    ax.margins(0.15)
    labels = [f"{m['end']}: {m['feature']}" for m in result["modalities"]]
    bars.barh(labels, [m["share"] for m in result["modalities"]],
              color=["tab:blue" if m["end"] == "source" else "tab:green" for m in result["modalities"]])
    bars.set(xlim=(0, 1), xlabel="share of the end's score drop", title="modalities")
    bars.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
