"""Bounded memory: one epoch of neighbour-sampled training on a synthetic 1M-node, 10M-edge graph.

The graph (`--nodes`, `--edges`, `--dim`): node types user (40 %), item (40 %) and tag (20 %),
each with a `--dim`-d float feature (5 % of users missing it); four relations with skewed
(power-law-ish) degrees: user-buys->item (40 % of the edges, the scored relation),
user-follows->user (20 %), item-tagged->tag (25 %) and item-similar->item (15 %). It is a
`HeteroData` in the format `mmgraph.data` builds (features + `_mask`, `g.mmgraph` meta), so it
goes through `prepare_graph` and `fit` unchanged: `fit(epochs=1)` with `batching: mini`, i.e.
the sampled training epoch, then the validation pass `fit` always runs at its last epoch
(layer-wise embedding of every node in bounded memory, filtered ranking of the valid edges).
Valid and test are kept small (`--eval-share` of the buys edges each) so that the full ranking
does not dominate; `--supervision-ratio` sets how many training edges the epoch supervises.

Recorded (stderr, and `--json FILE` as one row): the graph's own size, the peak resident memory
(`ru_maxrss`) after building, the peak of each phase (the resident graph included) where Linux
lets the peak be reset (`/proc/self/clear_refs`, which resets `ru_maxrss` too), the overall peak, the CUDA allocator's peak on a GPU, the epoch's
training time (wall and CPU), steps and steps/s, and the time of the validation pass (layer-wise
embedding, ranking). The features are random, so there is nothing to learn: this measures cost.

    python benchmarks/memory_scale.py [--nodes 1000000] [--edges 10000000] [--dim 64] [--json FILE]
    python benchmarks/memory_scale.py --quick          # 100k nodes, 1M edges
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from mmgraph.runtime import setup_process  # noqa: E402

setup_process()   # before torch loads, as the CLI does
import torch  # noqa: E402
from torch_geometric.data import HeteroData  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import peak_rss_mb  # noqa: E402
from train_step import skewed_ids  # noqa: E402

from mmgraph.eval import evaluate as evaluate_module  # noqa: E402
from mmgraph.train import trainer  # noqa: E402
from mmgraph.train.config import TrainConfig  # noqa: E402
from mmgraph.train.prepare import prepare_graph  # noqa: E402
from mmgraph.utils import resolve_device  # noqa: E402

NODE_SHARES = {"user": 0.4, "item": 0.4, "tag": 0.2}
EDGE_SHARES = {("user", "buys", "item"): 0.4, ("user", "follows", "user"): 0.2,
               ("item", "tagged", "tag"): 0.25, ("item", "similar", "item"): 0.15}


def make_graph(nodes: int, edges: int, dim: int, seed: int = 0) -> HeteroData:
    """The synthetic graph of the module docstring, built from a seeded generator."""
    gen = torch.Generator().manual_seed(seed)
    g = HeteroData()
    num = {t: max(2, int(nodes * s)) for t, s in NODE_SHARES.items()}
    for t, n in num.items():
        g[t].num_nodes = n
        g[t].feat = torch.randn(n, dim, generator=gen)
        g[t].feat_mask = (torch.rand(n, generator=gen) > 0.05) if t == "user" else torch.ones(n, dtype=torch.bool)
        g[t].feat[~g[t].feat_mask] = 0.0
    for et, share in EDGE_SHARES.items():
        count = int(edges * share)
        g[et].edge_index = torch.stack([skewed_ids(count, num[et[0]], gen), skewed_ids(count, num[et[2]], gen)])
    g.mmgraph = {"name": "synthetic", "ids": {},
                 "features": {t: {"feat": {"modality": "vector", "encoder": "vector", "dim": dim, "spec": {}}}
                              for t in num},
                 "source": {}}
    return g


def add_graph_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The graph's size (`--quick`: a tenth) and the training step's shape, for this script and
    `trim_step.py`."""
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--edges", type=int, default=10_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="100k nodes and 1M edges")
    parser.add_argument("--json", type=Path, help="write the result rows here")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--fanouts", default="10,5", help="sampled in-neighbours per layer")
    parser.add_argument("--negatives", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    return parser


def graph_bytes(g: HeteroData) -> int:
    return sum(v.numel() * v.element_size() for store in g.stores for v in store.values()
               if isinstance(v, torch.Tensor))


def reset_peak() -> bool:
    """Reset this process's peak RSS (VmHWM) so the next phase's peak is its own (Linux only)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def vm_hwm_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


class Timed:
    """Wraps a function of a module (how a phase is measured inside fit): its wall and CPU time,
    and the process's peak RSS during its calls where the peak can be reset."""

    def __init__(self, module, name: str):
        self.fn, self.seconds, self.cpu_seconds, self.peak_mb = getattr(module, name), 0.0, 0.0, None
        setattr(module, name, self)

    def __call__(self, *args, **kwargs):
        start, cpu = time.perf_counter(), time.process_time()
        can_reset = reset_peak()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start
            self.cpu_seconds += time.process_time() - cpu
            if can_reset:
                self.peak_mb = max(self.peak_mb or 0.0, vm_hwm_mb() or 0.0)


def main(argv=None) -> dict:
    parser = add_graph_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    parser.add_argument("--supervision-ratio", type=float, default=0.01)
    parser.add_argument("--eval-share", type=float, default=0.0005, help="share of buys edges in valid and in test")
    args = parser.parse_args(argv)
    if args.quick:
        args.nodes, args.edges = args.nodes // 10, args.edges // 10
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    device = resolve_device(args.device)
    fanouts = [int(k) for k in args.fanouts.split(",")]

    start = time.perf_counter()
    graph = make_graph(args.nodes, args.edges, args.dim)
    build_s = time.perf_counter() - start
    config = TrainConfig.from_dict({
        "epochs": 1, "batching": "mini", "fanouts": fanouts, "loss": "bce", "num_negatives": args.negatives,
        "batch_size": args.batch_size, "supervision_ratio": args.supervision_ratio, "relations": ["buys"],
        "split_ratios": [1 - 2 * args.eval_share, args.eval_share, args.eval_share],
        "model": {"channels": args.dim, "num_layers": len(fanouts), "conv": "sage"}})
    prepared = prepare_graph(graph, relations=config.relations, split_ratios=config.split_ratios, seed=0)
    prepare_s = time.perf_counter() - start - build_s
    rss_graph = peak_rss_mb()
    auto_mode, auto_why = trainer.choose_batching(prepared, config.replace(batching="auto"), device)
    print(f"{args.nodes} nodes, {args.edges} edges, {args.dim}-d: graph {graph_bytes(graph) / 2**20:.0f} MiB, "
          f"built in {build_s:.1f} s, prepared in {prepare_s:.1f} s, peak RSS {rss_graph:.0f} MiB; "
          f"auto would pick {auto_mode} ({auto_why})", file=sys.stderr)

    can_reset = reset_peak()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    epoch = Timed(trainer, "run_epoch")
    embed = Timed(trainer, "embed_for_eval")
    ranking = Timed(evaluate_module, "evaluate_split")
    model = trainer.build_model(config, prepared)
    start = time.perf_counter()
    trainer.fit(model, prepared, config, device=device, evaluate=ranking)
    fit_s = time.perf_counter() - start
    supervised = sum(int(round(config.supervision_ratio * s.train.numel())) for et, s in prepared.splits.items()
                     if et in prepared.relations)
    steps = -(-supervised // config.batch_size)
    row = {
        "name": "memory_scale.epoch", "nodes": sum(prepared.num_nodes.values()),
        "edges": sum(int(ei.size(1)) for ei in prepared.edge_index.values()), "dim": args.dim,
        "graph_mb": round(graph_bytes(graph) / 2**20, 1), "device": str(device), "threads": torch.get_num_threads(),
        "batch_size": config.batch_size, "fanouts": fanouts, "negatives": config.num_negatives,
        "supervision_ratio": config.supervision_ratio, "supervised_edges": supervised, "steps": steps,
        "train_edges": sum(int(s.train.numel()) for s in prepared.splits.values()),
        "epoch_train_s": round(epoch.seconds, 1), "epoch_train_cpu_s": round(epoch.cpu_seconds, 1),
        "steps_per_s": round(steps / epoch.seconds, 3),
        "valid_embed_s": round(embed.seconds, 1), "valid_embed_cpu_s": round(embed.cpu_seconds, 1),
        "valid_ranking_s": round(ranking.seconds, 1), "fit_s": round(fit_s, 1), "build_s": round(build_s, 1),
        "prepare_s": round(prepare_s, 1), "peak_rss_after_build_mb": round(rss_graph, 1),
        "peak_rss_mb": round(max(rss_graph, peak_rss_mb(), *(t.peak_mb or 0.0 for t in (epoch, embed, ranking))), 1),
        "auto_batching": auto_mode,
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }
    if can_reset:   # each phase's own peak (the graph and its CSRs included: they stay resident)
        row.update(peak_rss_epoch_mb=round(epoch.peak_mb, 1),
                   peak_rss_embed_mb=round(embed.peak_mb, 1), peak_rss_ranking_mb=round(ranking.peak_mb, 1))
    if device.type == "cuda":
        row["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    # An epoch supervising every training edge of the scored relation, at this step rate.
    scored_train = sum(int(prepared.splits[et].train.numel()) for et in prepared.relations)
    row["all_edges_epoch_estimate_s"] = round(scored_train / config.batch_size / row["steps_per_s"])
    print(json.dumps(row, indent=1), file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps([row], indent=1))
    return row


if __name__ == "__main__":
    main()
