"""mmgraph's neighbour sampler against the kernel PyG's `NeighborSampler` runs with torch-sparse,
on the synthetic graph of `memory_scale.py` and the seeds of the trainer's own steps.

Ours is `HeteroNeighborSampler.sample` (sampling, dedup, relabelling to local ids, the trim
plan). The baseline is `torch.ops.torch_sparse.hetero_neighbor_sample`, what
`torch_geometric.sampler.NeighborSampler` calls when torch-sparse is installed and pyg-lib is not
(PyG's own Python around it, building `HeteroData`, is left out: the kernel alone). Both get the
same CSC of the epoch's message edges (reverse types included), the same fan-outs without
replacement and the same seeds: the heads, tails and filtered negatives of `--steps` batches of
`minibatch_step_loss` (`--batch-size` supervision edges, BCE with `--negatives`). Before timing,
one batch is checked: the first hop takes min(in-degree, fan-out) in-edges of every seed per edge
type in both, and the numbers of sampled nodes agree within 2 %.

Row (`--json FILE`): `sampler_pyg.sample`, medians over the batches (each sampled by both, the
order alternating), ratio = torch-sparse / ours (> 1: ours is faster). Without torch-sparse the
row is `skipped` (building it: benchmarks/README.md).

    python benchmarks/sampler_pyg.py [--quick] [--fanouts 10,5] [--batch-size 4096] [--steps 5]
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

from mmgraph.runtime import setup_process  # noqa: E402

setup_process()
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import make_row, print_rows, write_rows  # noqa: E402
from memory_scale import add_graph_args, make_graph  # noqa: E402

from mmgraph.train import minibatch  # noqa: E402
from mmgraph.train.config import TrainConfig, supervision_ratio  # noqa: E402
from mmgraph.train.message_passing import epoch_edges  # noqa: E402
from mmgraph.train.negatives import filtered_negatives  # noqa: E402
from mmgraph.train.prepare import prepare_graph  # noqa: E402

NAME = "sampler_pyg.sample"


def key(et) -> str:
    return "__".join(et)


def batch_seeds(prepared, filters, which, pairs, k: int, gen) -> dict[str, torch.Tensor]:
    """The seeds one step of `minibatch_step_loss` samples from (BCE: heads, tails, corrupted tails)."""
    seeds: dict[str, list[torch.Tensor]] = {}
    for i, et in enumerate(prepared.relations):
        pair = pairs[:, which == i]
        neg = filtered_negatives(pair[0], prepared.num_nodes[et[2]], k, true_edges=filters[et][0], generator=gen)
        for t, ids in ((et[0], pair[0]), (et[2], pair[1]), (et[2], neg.reshape(-1))):
            seeds.setdefault(t, []).append(ids)
    return {t: torch.cat(v) for t, v in seeds.items()}


class TorchSparse:
    """`hetero_neighbor_sample` over the same message edges: CSC by target, as PyG builds it."""

    def __init__(self, edge_index_dict, num_nodes: dict[str, int], fanouts: list[int]):
        self.node_types = list(num_nodes)
        self.edge_types = list(edge_index_dict)   # tuples; the dicts are keyed by "src__rel__dst"
        self.colptr, self.row = {}, {}
        for et, ei in edge_index_dict.items():
            perm = ei[1].argsort(stable=True)
            ptr = torch.zeros(num_nodes[et[2]] + 1, dtype=torch.long)
            ptr[1:] = torch.bincount(ei[1], minlength=num_nodes[et[2]]).cumsum(0)
            self.colptr[key(et)], self.row[key(et)] = ptr, ei[0, perm].contiguous()
        self.fanouts = {key(et): list(fanouts) for et in edge_index_dict}
        self.hops = len(fanouts)

    def sample(self, seeds: dict[str, torch.Tensor]):
        # dedup as NeighborSampler's input does (each seed once), then the kernel
        seed_dict = {t: s.unique() for t, s in seeds.items()}
        return torch.ops.torch_sparse.hetero_neighbor_sample(
            self.node_types, self.edge_types, self.colptr, self.row, seed_dict, self.fanouts, self.hops,
            False, True)   # without replacement, directed


def check(ours, theirs, seeds, base, fanouts) -> None:
    """First hop exact (min(in-degree, fan-out) per seed and edge type), node counts within 2 %."""
    node, row, col, edge = theirs
    for et, (ptr, _, _) in base._csr.items():
        s = seeds.get(et[2])
        if s is None:
            continue
        s = s.unique()
        want = int(torch.minimum(ptr[s + 1] - ptr[s], torch.tensor(fanouts[0])).sum())
        got_ours = ours.num_sampled_edges[et][0]
        # torch-sparse: the first hop's edges are those into the seeds (local ids below the seed count)
        got_theirs = int((col[key(et)] < s.numel()).sum()) if key(et) in col else 0
        if not got_ours == got_theirs == want:
            raise SystemExit(f"{et}: first hop {got_ours} (ours) / {got_theirs} (torch-sparse) edges, want {want}")
    for t, ids in ours.n_id.items():
        theirs_n = node[t].numel() if t in node else 0
        if abs(ids.numel() - theirs_n) > 0.02 * max(ids.numel(), 1):
            raise SystemExit(f"{t}: {ids.numel()} sampled nodes (ours) against {theirs_n} (torch-sparse)")


def main(argv=None) -> list[dict]:
    parser = add_graph_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    parser.add_argument("--steps", type=int, default=5, help="batches timed (medians)")
    parser.add_argument("--supervision-ratio", type=float, default=0.3)
    args = parser.parse_args(argv)
    if args.quick:
        args.nodes, args.edges = args.nodes // 10, args.edges // 10
    torch.set_num_threads(args.threads)
    if importlib.util.find_spec("torch_sparse") is None:
        row = {"name": NAME, "ours_s": None, "baseline": "torch-sparse hetero_neighbor_sample", "baseline_s": None,
               "ratio": None, "status": "skipped", "error": "torch-sparse is not installed (benchmarks/README.md)"}
        print(row["error"], file=sys.stderr)
        if args.json:
            write_rows(args.json, [row])
        return [row]
    import torch_sparse  # noqa: F401  (registers torch.ops.torch_sparse)

    fanouts = [int(k) for k in args.fanouts.split(",")]
    config = TrainConfig.from_dict({
        "epochs": 1, "batching": "mini", "fanouts": fanouts, "loss": "bce", "num_negatives": args.negatives,
        "batch_size": args.batch_size, "supervision_ratio": args.supervision_ratio, "relations": ["buys"],
        "model": {"channels": args.dim, "num_layers": len(fanouts), "conv": "sage"}})
    prepared = prepare_graph(make_graph(args.nodes, args.edges, args.dim), relations=config.relations,
                             split_ratios=(0.999, 0.0005, 0.0005), seed=0)
    gen = torch.Generator().manual_seed(0)
    message_idx, supervision = epoch_edges(prepared.splits, prepared.relations,
                                           supervision_ratio=supervision_ratio(config), generator=gen)
    ours = minibatch.epoch_sampler(prepared, config, message_idx)
    theirs = TorchSparse(prepared.message_edges(message_idx), prepared.num_nodes, fanouts)
    filters = minibatch.negative_filters(prepared.train_filters)
    batches = minibatch.supervision_batches(prepared, supervision, config.batch_size, gen)[:args.steps + 1]
    seeds = [batch_seeds(prepared, filters, which, pairs, config.num_negatives, gen) for which, pairs in batches]
    check(ours.sample(seeds[0], generator=gen), theirs.sample(seeds[0]), seeds[0], ours, fanouts)
    torch.manual_seed(0)
    times = {"ours": [], "theirs": []}
    for i, s in enumerate(seeds[1:]):   # seeds[0]: the check above was the warm-up
        order = [("ours", lambda s=s: ours.sample(s, generator=gen)), ("theirs", lambda s=s: theirs.sample(s))]
        for name, fn in order if i % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    sub = ours.sample(seeds[1], generator=gen)
    row = make_row(NAME, statistics.median(times["ours"]), "torch-sparse hetero_neighbor_sample (PyG NeighborSampler)",
                   statistics.median(times["theirs"]), nodes=sum(prepared.num_nodes.values()),
                   edges=sum(int(ei.size(1)) for ei in prepared.edge_index.values()), fanouts=fanouts,
                   batch_size=args.batch_size, seeds=sum(int(v.numel()) for v in seeds[1].values()),
                   sampled_nodes=sum(int(v.numel()) for v in sub.n_id.values()),
                   sampled_edges=sum(int(v.size(1)) for v in sub.edge_index.values()),
                   threads=torch.get_num_threads(), steps=len(times["ours"]))
    print_rows([row])
    if args.json:
        write_rows(args.json, [row])
    return [row]


if __name__ == "__main__":
    main()
