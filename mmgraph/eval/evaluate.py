"""The evaluation protocol of CONTRACT.md section 4, per relation and overall.

Ranking: every edge (h, r, t) of the split is ranked as (h, r, ?) against every node of the tail
type and as (?, r, t) against every node of the head type, with the other true edges of r (train,
valid and test) filtered out; ties count as the mean of the optimistic and pessimistic rank.
Classification: each edge is paired with one corrupted tail of the same relation that is never a
true edge; AUC and AP over those scores, precision/recall/F1 at the threshold that maximises F1
on the validation split.
"""
from __future__ import annotations

import torch
from torch import Tensor

from mmgraph.data.graph import edge_key
from mmgraph.eval.metrics import best_threshold, classification_metrics, ranks_to_metrics
from mmgraph.eval.ranking import filtered_ranks
from mmgraph.train.negatives import filtered_negatives

METRIC_KEYS = ("mrr", "hits@1", "hits@3", "hits@10", "auc", "ap", "precision", "recall", "f1")


@torch.no_grad()
def relation_scores(model, et, z: dict[str, Tensor], edges: Tensor) -> Tensor:
    return model.score(et, z[et[0]][edges[0]], z[et[2]][edges[1]]).float()


@torch.no_grad()
def ranking_for_relation(model, et, z: dict[str, Tensor], edges: Tensor, filter_index,
                         *, chunk_size: int | None = None) -> Tensor:
    """Filtered ranks of both directions, [2 * E] (tail queries first).

    `chunk_size` queries are scored at once; by default 1024, fewer when a chunk of scores
    against every candidate would pass 2**26 entries (256 MB), so a million nodes fit too.
    """
    z_src, z_dst = z[et[0]], z[et[2]]
    if chunk_size is None:
        chunk_size = max(1, min(1024, 2 ** 26 // max(z_src.size(0), z_dst.size(0), 1)))
    heads, tails = edges[0], edges[1]

    def tails_of(q: Tensor) -> Tensor:
        return model.score_tails(et, z_src[q], z_dst).float()

    def heads_of(q: Tensor) -> Tensor:
        return model.score_heads(et, z_src, z_dst[q]).float()

    tail_ranks = filtered_ranks(tails_of, heads, tails, filter_index, direction="tail", chunk_size=chunk_size)
    head_ranks = filtered_ranks(heads_of, tails, heads, filter_index, direction="head", chunk_size=chunk_size)
    return torch.cat([tail_ranks, head_ranks])


@torch.no_grad()
def corrupted_tail_scores(model, et, z, edges: Tensor, all_edges: Tensor, num_dst: int, seed: int) -> Tensor:
    """Scores of one filtered corrupted tail per edge (a fixed seed: the same negatives every time)."""
    generator = torch.Generator().manual_seed(seed)
    neg = filtered_negatives(edges[0].cpu(), num_dst, 1, true_edges=all_edges.cpu(),
                             generator=generator).view(-1).to(edges.device)
    return model.score(et, z[et[0]][edges[0]], z[et[2]][neg]).float()


def evaluate_split(model, prepared, z: dict[str, Tensor], *, split: str = "test", seed: int = 0,
                   relations=None, with_classification: bool = True, by_direction: bool = False) -> dict:
    """The `evaluate --json` dictionary for one split. `by_direction` adds each relation's rank
    metrics of its tail queries and head queries (`tail_mrr`, `head_hits@1`, ...) to its row."""
    out: dict = {"split": split, "relations": {}}
    totals: dict[str, float] = {k: 0.0 for k in METRIC_KEYS}
    total_count = 0
    for et in relations or prepared.relations:
        edges = prepared.split_edges_of(et, split).to(next(iter(z.values())).device)
        count = int(edges.size(1))
        if count == 0:
            continue
        ranks = ranking_for_relation(model, et, z, edges, prepared.filters[et])
        row = {"count": count, **ranks_to_metrics(ranks.cpu(), ks=(1, 3, 10))}
        if with_classification:
            row.update(_classification(model, prepared, et, z, edges, split, seed))
        out["relations"][edge_key(et)] = {k: row.get(k) for k in ("count", *METRIC_KEYS)}
        if by_direction:   # ranks hold the tail queries first
            for direction, part in (("tail", ranks[:count]), ("head", ranks[count:])):
                out["relations"][edge_key(et)].update(
                    {f"{direction}_{k}": v for k, v in ranks_to_metrics(part.cpu(), ks=(1, 3, 10)).items()})
        for k in METRIC_KEYS:
            totals[k] += float(row.get(k, 0.0)) * count
        total_count += count
    overall = {"count": total_count}
    overall.update({k: (totals[k] / total_count if total_count else 0.0) for k in METRIC_KEYS})
    out["overall"] = overall
    return out


def _classification(model, prepared, et, z, edges: Tensor, split: str, seed: int) -> dict[str, float]:
    all_edges = prepared.edge_index[et]
    num_dst = prepared.num_nodes[et[2]]
    pos = relation_scores(model, et, z, edges)
    neg = corrupted_tail_scores(model, et, z, edges, all_edges, num_dst, seed)
    valid_edges = prepared.split_edges_of(et, "valid").to(edges.device)
    if split != "valid" and valid_edges.size(1) > 0:
        v_pos = relation_scores(model, et, z, valid_edges)
        v_neg = corrupted_tail_scores(model, et, z, valid_edges, all_edges, num_dst, seed + 1)
        threshold = best_threshold(v_pos.cpu(), v_neg.cpu())
    else:  # no validation edges: the threshold is chosen on the split itself (said in the docs)
        threshold = best_threshold(pos.cpu(), neg.cpu())
    return classification_metrics(pos.cpu(), neg.cpu(), threshold=threshold)


def metrics_table(result: dict) -> str:
    """A fixed-width table of one split's metrics, one row per relation and the overall row."""
    cols = ("count", "mrr", "hits@1", "hits@3", "hits@10", "auc", "ap", "f1")
    rows = list(result["relations"].items()) + [("overall", result["overall"])]
    width = max(len(name) for name, _ in rows)
    lines = [f"{result['split']:<{width}}  " + "  ".join(f"{c:>7}" for c in cols)]
    for name, m in rows:
        cells = [f"{int(m['count']):>7d}"] + [f"{m[c]:>7.3f}" if m.get(c) is not None else f"{'-':>7}"
                                             for c in cols[1:]]
        lines.append(f"{name:<{width}}  " + "  ".join(cells))
    return "\n".join(lines)
