"""One link-prediction training step with neighbour sampling: mmgraph's sampler against a baseline.

The graph: user / item / tag (200k nodes; `--quick` divides every size by 10) with three
relations of skewed degree, user-buys->item (1.2M), item-tagged->tag (0.5M), user-follows->user
(0.3M), plus their explicit reverse types for message passing; 64-d features on users (10 %
missing) and items, none on tags (they get learned embeddings). 5 % of the buys edges are held
out of message passing as the supervision pool. One step:

  sample  1024 positive buys edges from the pool (256 with --quick), 32 uniform negative items
          each, then the 2-hop neighbourhood of all their endpoints, fan-out [10, 10] per edge
          type, relabelled to local ids
  step    sample + LinkPredictor(ModelConfig(channels=64, num_layers=2, conv="sage")) embedding
          of the subgraph, DistMult scores, BCE loss + KL, backward, Adam step

Ours samples with `mmgraph.train.sampler.HeteroNeighborSampler` (vectorised torch). The baseline
is PyG's `LinkNeighborLoader` where pyg-lib or torch-sparse is importable, else a plain Python
loop, node by node, over the same CSR and the same fan-outs. Both subgraphs are checked once
(every sampled edge is a real edge, at most max(fan-out) per node and edge type) before timing.
Rows (also written with --json FILE), medians of --repeat runs after one warm-up, the runs of
ours and the baseline alternating:

  train_step.sample  sampling time;  train_step.step  the whole step (sampling included)
  name, ours_s, baseline, baseline_s, ratio = baseline_s / ours_s (> 1: ours is faster), plus
  the subgraph sizes, the compute share of a step, peak memory and the device.

    python benchmarks/train_step.py [--quick] [--device cpu|cuda] [--json FILE] [--repeat N]
"""
from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path
from typing import Callable, NamedTuple

# before torch starts OpenMP: workers spinning for a busy core of a shared machine slow the
# sampler's many small ops twenty-fold (see benchmarks/README.md)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import Timing, add_standard_args, make_row, peak_rss_mb, print_rows, time_two_phases, write_rows  # noqa: E402
from mmgraph.models import GraphSchema, LinkPredictor, ModelConfig  # noqa: E402
from mmgraph.train.losses import negative_sampling_loss  # noqa: E402
from mmgraph.train.message_passing import message_passing_edges  # noqa: E402
from mmgraph.train.negatives import uniform_negatives  # noqa: E402
from mmgraph.train.sampler import HeteroNeighborSampler  # noqa: E402
from mmgraph.utils import resolve_device  # noqa: E402

NODES = {"user": 100_000, "item": 80_000, "tag": 20_000}
BUYS = ("user", "buys", "item")
RELATIONS = [(BUYS, 1_200_000), (("item", "tagged", "tag"), 500_000), (("user", "follows", "user"), 300_000)]
DIM, NEGATIVES, FANOUTS, SUPERVISION_SHARE, KL_WEIGHT = 64, 32, [10, 10], 0.05, 1e-3
EdgeType = tuple[str, str, str]


class Batch(NamedTuple):
    """A sampled training batch in local ids: the subgraph and where the scored pairs sit in it."""

    n_id: dict[str, Tensor]                 # {type: [N_t] global ids}
    edge_index: dict[EdgeType, Tensor]      # {edge type: [2, E] local ids}
    src: Tensor                             # [B] local user ids of the positives
    dst: Tensor                             # [B] local item ids of the positives
    neg: Tensor                             # [B, K] local item ids of the negatives


# --- the workload ------------------------------------------------------------------------------
def skewed_ids(count: int, num: int, gen: torch.Generator) -> Tensor:
    """Ids with a heavy head (a few hubs hold many edges), shuffled so hubs are spread out."""
    ranks = (num * torch.rand(count, generator=gen).pow(2.0)).long().clamp_(max=num - 1)
    return torch.randperm(num, generator=gen)[ranks]


def make_graph(scale: float, seed: int = 0):
    """Node counts, features, message-passing edges (reverse types included), supervision pool."""
    gen = torch.Generator().manual_seed(seed)
    num = {t: max(2, int(n * scale)) for t, n in NODES.items()}
    edges = {et: torch.stack([skewed_ids(int(e * scale), num[et[0]], gen),
                              skewed_ids(int(e * scale), num[et[2]], gen)]) for et, e in RELATIONS}
    x = {t: {"feat": torch.randn(num[t], DIM, generator=gen)} for t in ("user", "item")}
    mask = {"user": {"feat": torch.rand(num["user"], generator=gen) > 0.1},
            "item": {"feat": torch.ones(num["item"], dtype=torch.bool)}}
    perm = torch.randperm(edges[BUYS].size(1), generator=gen)
    n_sup = int(SUPERVISION_SHARE * perm.numel())
    train_idx = {et: None for et in edges}
    train_idx[BUYS] = perm[n_sup:].sort().values
    mp_edges = message_passing_edges(edges, train_idx, add_reverse=True)
    return num, x, mask, mp_edges, edges[BUYS][:, perm[:n_sup]]


def make_model(num: dict[str, int], mp_edges: dict[EdgeType, Tensor]) -> LinkPredictor:
    feature_dims = {"user": {"feat": DIM}, "item": {"feat": DIM}, "tag": {}}
    modalities = {t: {f: "vector" for f in fs} for t, fs in feature_dims.items()}
    schema = GraphSchema(tuple(NODES), tuple(mp_edges), (BUYS,), feature_dims, modalities, dict(num))
    return LinkPredictor(ModelConfig(channels=DIM, num_layers=2, conv="sage"), schema)


def draw_pairs(pool: Tensor, batch_size: int, num_items: int, gen: torch.Generator):
    """`batch_size` positives from the pool and `NEGATIVES` uniform negative items for each."""
    pos = pool[:, torch.randperm(pool.size(1), generator=gen)[:batch_size]]
    return pos[0], pos[1], uniform_negatives(pos.size(1), num_items, NEGATIVES, generator=gen)


# --- samplers ----------------------------------------------------------------------------------
def ours_sampler(mp_edges, num, pool, batch_size, gen) -> Callable[[], Batch]:
    sampler = HeteroNeighborSampler(mp_edges, num, FANOUTS)

    def sample() -> Batch:
        src, dst, neg = draw_pairs(pool, batch_size, num["item"], gen)
        sub = sampler.sample({"user": src, "item": torch.cat([dst, neg.view(-1)])}, generator=gen)
        items = sub.seed_local["item"]
        b = src.numel()
        return Batch(sub.n_id, sub.edge_index, sub.seed_local["user"], items[:b], items[b:].view(b, -1))
    return sample


class PythonLoopSampler:
    """The plain baseline: the same in-neighbour sampling, one node at a time in Python.

    Per hop and edge type, each frontier node takes all its in-edges when it has at most `k`,
    else `random.sample` of `k` of them; ids are relabelled through a dict as they are met.
    """

    def __init__(self, edge_index_dict: dict[EdgeType, Tensor], num_nodes: dict[str, int], fanouts: list[int]):
        self.fanouts, self.num_nodes, self.csr = fanouts, num_nodes, {}
        for et, ei in edge_index_dict.items():
            perm = ei[1].argsort(stable=True)
            ptr = torch.zeros(num_nodes[et[2]] + 1, dtype=torch.long)
            ptr[1:] = torch.bincount(ei[1], minlength=num_nodes[et[2]]).cumsum(0)
            self.csr[et] = (ptr.tolist(), ei[0, perm].tolist())

    def sample(self, seeds: dict[str, Tensor], rng: random.Random):
        ids = {t: [] for t in self.num_nodes}
        where: dict[str, dict[int, int]] = {t: {} for t in self.num_nodes}
        seed_local, frontier = {}, {}
        for t, s in seeds.items():
            local, new = [], []
            for v in s.tolist():
                i = where[t].get(v)
                if i is None:
                    i = where[t][v] = len(ids[t])
                    ids[t].append(v)
                    new.append(v)
                local.append(i)
            seed_local[t], frontier[t] = torch.tensor(local), new
        picked = {et: ([], []) for et in self.csr}
        for k in self.fanouts:
            found: dict[str, list[int]] = {t: [] for t in self.num_nodes}
            for et, (ptr, col) in self.csr.items():
                src_ids, src_where, new = ids[et[0]], where[et[0]], found[et[0]]
                dst_where, (src_out, dst_out) = where[et[2]], picked[et]
                for v in frontier.get(et[2], ()):
                    lo, deg = ptr[v], ptr[v + 1] - ptr[v]
                    offsets = range(deg) if k < 0 or deg <= k else rng.sample(range(deg), k)
                    dv = dst_where[v]
                    for off in offsets:
                        u = col[lo + off]
                        i = src_where.get(u)
                        if i is None:
                            i = src_where[u] = len(src_ids)
                            src_ids.append(u)
                            new.append(u)
                        src_out.append(i)
                        dst_out.append(dv)
            frontier = found
        n_id = {t: torch.tensor(v, dtype=torch.long) for t, v in ids.items()}
        edge_index = {et: torch.tensor([s, d], dtype=torch.long).view(2, -1) for et, (s, d) in picked.items()}
        return n_id, edge_index, seed_local


def python_sampler(mp_edges, num, pool, batch_size, gen) -> Callable[[], Batch]:
    sampler = PythonLoopSampler(mp_edges, num, FANOUTS)
    rng = random.Random(0)

    def sample() -> Batch:
        src, dst, neg = draw_pairs(pool, batch_size, num["item"], gen)
        n_id, edge_index, seed_local = sampler.sample({"user": src, "item": torch.cat([dst, neg.view(-1)])}, rng)
        items, b = seed_local["item"], src.numel()
        return Batch(n_id, edge_index, seed_local["user"], items[:b], items[b:].view(b, -1))
    return sample


def pyg_sampler(mp_edges, num, pool, batch_size, gen) -> Callable[[], Batch]:
    """PyG's LinkNeighborLoader (needs pyg-lib or torch-sparse), triplet negatives, same fan-outs."""
    from torch_geometric.data import HeteroData
    from torch_geometric.loader import LinkNeighborLoader
    from torch_geometric.sampler import NegativeSampling

    data = HeteroData()
    for t, n in num.items():
        data[t].num_nodes = n
    for et, ei in mp_edges.items():
        data[et].edge_index = ei
    loader = LinkNeighborLoader(data, num_neighbors=FANOUTS, edge_label_index=(BUYS, pool),
                                neg_sampling=NegativeSampling("triplet", amount=NEGATIVES),
                                batch_size=batch_size, filter_per_worker=False)

    def sample() -> Batch:
        index = torch.randperm(pool.size(1), generator=gen)[:batch_size]
        out = loader.filter_fn(loader.collate_fn(index))   # sampling, then relabelling into HeteroData
        none = torch.empty(0, dtype=torch.long)
        n_id = {t: out[t].n_id if "n_id" in out[t] else none for t in num}   # a type may get no nodes
        return Batch(n_id, {et: out[et].edge_index for et in mp_edges},
                     out["user"].src_index, out["item"].dst_pos_index, out["item"].dst_neg_index)
    return sample


def check_batch(batch: Batch, mp_edges: dict[EdgeType, Tensor], num: dict[str, int], batch_size: int) -> None:
    """Every sampled edge is a real message-passing edge; at most max(fan-outs) in-edges per node
    and edge type (a node is expanded in one hop only)."""
    for et, ei in batch.edge_index.items():
        if ei.numel() == 0:
            continue
        n_dst = num[et[2]]
        real = mp_edges[et][0] * n_dst + mp_edges[et][1]
        got = batch.n_id[et[0]][ei[0]] * n_dst + batch.n_id[et[2]][ei[1]]
        if not torch.isin(got, real).all():
            raise SystemExit(f"{et}: the sampler returned edges that are not in the graph")
        if int(torch.bincount(ei[1]).max()) > max(FANOUTS):
            raise SystemExit(f"{et}: a node got more than {max(FANOUTS)} sampled in-edges")
    if batch.neg.shape != (batch_size, NEGATIVES) or batch.src.numel() != batch_size:
        raise SystemExit(f"batch has {batch.src.numel()} positives and negatives {tuple(batch.neg.shape)}")


# --- the step ----------------------------------------------------------------------------------
def make_step(model: LinkPredictor, x, mask, device: torch.device) -> Callable[[Batch], float]:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(batch: Batch) -> float:
        model.train()
        n_id = {t: v.to(device) for t, v in batch.n_id.items()}
        x_sub = {t: {f: v[n_id[t]] for f, v in fs.items()} for t, fs in x.items()}
        m_sub = {t: {f: v[n_id[t]] for f, v in fs.items()} for t, fs in mask.items()}
        edges = {et: ei.to(device) for et, ei in batch.edge_index.items()}
        z, kl = model.embed(x_sub, m_sub, edges, n_id_dict=n_id)
        src, dst, neg = z["user"][batch.src.to(device)], z["item"][batch.dst.to(device)], batch.neg.to(device)
        pos = model.score(BUYS, src, dst)
        k = neg.size(1)
        neg_scores = model.score(BUYS, src.repeat_interleave(k, 0), z["item"][neg.reshape(-1)]).view(-1, k)
        loss = negative_sampling_loss(pos, neg_scores) + KL_WEIGHT * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return float(loss.detach())
    return step


def interleaved(ours, theirs, step, *, repeat: int, device) -> tuple[tuple[Timing, Timing], ...]:
    """(sample, whole step) timings of each sampler, their runs alternating (after one warm-up
    each) so that a change in the shared machine's load hits both alike."""
    runs: dict[int, list[tuple[Timing, Timing]]] = {0: [], 1: []}
    for i in range(repeat):
        for j in ((0, 1) if i % 2 == 0 else (1, 0)):
            runs[j].append(time_two_phases((ours, theirs)[j], step, warmup=int(i == 0), repeat=1, device=device))
    return tuple((Timing(tuple(t.times[0] for t, _ in runs[j])), Timing(tuple(s.times[0] for _, s in runs[j])))
                 for j in (0, 1))


def sizes(batch: Batch) -> tuple[int, int]:
    return (sum(v.numel() for v in batch.n_id.values()), sum(e.size(1) for e in batch.edge_index.values()))


def main(argv=None) -> list[dict]:
    parser = add_standard_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    parser.add_argument("--repeat", type=int, default=None, help="timed runs (median); default 5")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    repeat = args.repeat or 5
    scale, batch_size = (0.1, 256) if args.quick else (1.0, 1024)
    torch.manual_seed(0)  # model initialisation
    num, x, mask, mp_edges, pool = make_graph(scale)
    gen = torch.Generator().manual_seed(1)
    x = {t: {f: v.to(device) for f, v in fs.items()} for t, fs in x.items()}
    mask = {t: {f: v.to(device) for f, v in fs.items()} for t, fs in mask.items()}
    step = make_step(make_model(num, mp_edges).to(device), x, mask, device)

    import torch_geometric.typing as pyg_typing
    if pyg_typing.WITH_PYG_LIB or pyg_typing.WITH_TORCH_SPARSE:
        backend = "pyg-lib" if pyg_typing.WITH_PYG_LIB else "torch-sparse"
        baseline, make_baseline = f"PyG LinkNeighborLoader ({backend})", pyg_sampler
    else:
        baseline, make_baseline = "python per-node loop (no pyg-lib / torch-sparse)", python_sampler
    ours, theirs = ours_sampler(mp_edges, num, pool, batch_size, gen), make_baseline(mp_edges, num, pool, batch_size, gen)
    print(f"{sum(num.values())} nodes, {sum(e.size(1) for e in mp_edges.values())} message edges, "
          f"batch {batch_size} x {NEGATIVES} negatives, fan-out {FANOUTS}, {device}, "
          f"{torch.get_num_threads()} threads; baseline: {baseline}", file=sys.stderr)
    ours_batch, base_batch = ours(), theirs()
    for batch in (ours_batch, base_batch):
        check_batch(batch, mp_edges, num, batch_size)
    (ours_nodes, ours_edges), (base_nodes, base_edges) = sizes(ours_batch), sizes(base_batch)
    print(f"subgraph: ours {ours_nodes} nodes / {ours_edges} edges, baseline {base_nodes} / {base_edges}",
          file=sys.stderr)

    (t_ours, s_ours), (t_base, s_base) = interleaved(ours, theirs, step, repeat=repeat, device=device)
    common = {"device": str(device), "batch": batch_size, "negatives": NEGATIVES, "fanouts": FANOUTS,
              "ours_nodes": ours_nodes, "ours_edges": ours_edges,
              "baseline_nodes": base_nodes, "baseline_edges": base_edges}
    memory = {"peak_process_rss_mb": round(peak_rss_mb(), 1)}
    if device.type == "cuda":
        memory["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated(device) / 2 ** 20, 1)
    rows = [make_row("train_step.sample", t_ours.median_s, baseline, t_base.median_s, **common),
            make_row("train_step.step", s_ours.median_s, baseline, s_base.median_s, **common,
                     ours_compute_s=round(s_ours.median_s - t_ours.median_s, 4), **memory)]
    print_rows(rows)
    if args.json:
        write_rows(args.json, rows)
    return rows


if __name__ == "__main__":
    main()
