"""Negative sampling: uniform, Bernoulli head/tail corruption, filtered (never a true edge), in-batch.

Pure functions: index tensors and a `torch.Generator` in, node ids (or batch positions) out.
Node ids are drawn from the range of the *right node type*: callers pass `num_src` / `num_dst`
of the relation's source and target types.
"""
from __future__ import annotations

import torch
from torch import Tensor

from mmgraph.errors import InputError
from mmgraph.train.splits import edge_keys

__all__ = ["uniform_negatives", "bernoulli_head_probability", "bernoulli_corruption",
           "filtered_negatives", "in_batch_negatives"]


def uniform_negatives(num_pos: int, num_dst: int, num_neg: int, *,
                      generator: torch.Generator | None = None) -> Tensor:
    """`[num_pos, num_neg]` target ids drawn uniformly from `[0, num_dst)` (unfiltered).

    Example::

        neg = uniform_negatives(4, num_nodes["item"], 8, generator=g)   # [4, 8]
    """
    if num_dst <= 0:
        raise InputError(f"cannot draw negatives from a node type with {num_dst} nodes")
    return torch.randint(num_dst, (num_pos, num_neg), generator=generator)


def bernoulli_head_probability(edge_index: Tensor) -> float:
    """Probability of corrupting the *head* for one relation (Wang et al. 2014, TransH):

    .. math::
        p_{head} = \\frac{tph}{tph + hpt}, \\quad
        tph = \\frac{|\\mathcal{E}|}{|\\{h\\}|}, \\quad hpt = \\frac{|\\mathcal{E}|}{|\\{t\\}|}

    over distinct edges: a one-to-many relation (many tails per head) corrupts heads more often,
    since a corrupted tail would too often be another true tail.
    """
    if edge_index.size(1) == 0:
        return 0.5
    num_dst = int(edge_index[1].max()) + 1
    keys = edge_keys(edge_index, num_dst).unique()
    n_edges = keys.numel()
    tph = n_edges / (keys // num_dst).unique().numel()
    hpt = n_edges / (keys % num_dst).unique().numel()
    return tph / (tph + hpt)


def bernoulli_corruption(edge_index: Tensor, num_src: int, num_dst: int, num_neg: int, *,
                         generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Corrupt each edge `num_neg` times, the head with probability `bernoulli_head_probability`
    and the tail otherwise, drawing the replacement uniformly from its node type.

    `edge_index` holds the edges of ONE relation. Returns `(neg_src, neg_dst)`, each
    `[E, num_neg]`; in every negative exactly one side differs from the positive's (or is
    redrawn equal to it by chance: unfiltered).

    Example::

        neg_src, neg_dst = bernoulli_corruption(ei, n_users, n_items, 4, generator=g)
        loss = bce(score(z_u[neg_src], z_i[neg_dst]), 0)
    """
    if num_src <= 0 or num_dst <= 0:
        raise InputError(f"cannot corrupt edges between node types of {num_src} and {num_dst} nodes")
    p_head = bernoulli_head_probability(edge_index)
    n = edge_index.size(1)
    corrupt_head = torch.rand((n, num_neg), generator=generator) < p_head
    new_src = torch.randint(num_src, (n, num_neg), generator=generator)
    new_dst = torch.randint(num_dst, (n, num_neg), generator=generator)
    src = edge_index[0].long().view(-1, 1).expand(n, num_neg).cpu()
    dst = edge_index[1].long().view(-1, 1).expand(n, num_neg).cpu()
    neg_src = torch.where(corrupt_head, new_src, src)
    neg_dst = torch.where(corrupt_head, dst, new_dst)
    return neg_src.to(edge_index.device), neg_dst.to(edge_index.device)


def _isin_sorted(keys: Tensor, sorted_keys: Tensor) -> Tensor:
    if sorted_keys.numel() == 0:
        return torch.zeros_like(keys, dtype=torch.bool)
    pos = torch.searchsorted(sorted_keys, keys).clamp_(max=sorted_keys.numel() - 1)
    return sorted_keys[pos] == keys


def _sample_complement(src: Tensor, true_keys: Tensor, num_dst: int,
                       generator: torch.Generator | None) -> Tensor:
    """Exactly uniform draw from the targets NOT linked to each `src` (no rejection).

    With the true targets of a source sorted, t_0 < t_1 < ..., the r-th free target is
    r + #{k : t_k - k <= r}; `t_k - k` is non-decreasing, so one binary search finds the count.
    """
    t_src, t_dst = true_keys // num_dst, true_keys % num_dst
    start_of_edge = torch.searchsorted(t_src, t_src)
    adjusted = t_dst - (torch.arange(t_src.numel()) - start_of_edge)   # in [0, num_dst]
    adjusted_keys = t_src * (num_dst + 1) + adjusted                     # sorted
    start = torch.searchsorted(t_src, src)
    free = num_dst - (torch.searchsorted(t_src, src, right=True) - start)
    if (free == 0).any():
        node = int(src[(free == 0).nonzero()[0, 0]])
        raise InputError(f"source node {node} is linked to all {num_dst} targets of the relation; "
                         "no negative target exists for it")
    r = (torch.rand(src.numel(), generator=generator, dtype=torch.float64) * free).long()
    r = torch.minimum(r, free - 1)
    below = torch.searchsorted(adjusted_keys, src * (num_dst + 1) + r, right=True) - start
    return r + below


def _sorted_true_keys(true_edges, num_dst: int) -> Tensor:
    if isinstance(true_edges, Tensor):
        return edge_keys(true_edges.cpu(), num_dst).unique()
    if true_edges.num_dst != num_dst:    # a FilterIndex: its keys are already sorted and unique
        raise ValueError(f"FilterIndex has {true_edges.num_dst} targets, num_dst is {num_dst}")
    return true_edges.edge_keys().cpu()


def filtered_negatives(src: Tensor, num_dst: int, num_neg: int, *, true_edges,
                       generator: torch.Generator | None = None, max_rounds: int = 4) -> Tensor:
    """`[P, num_neg]` targets such that no `(src[i], out[i, j])` is a true edge.

    Draw uniformly, hash each pair as `src * num_dst + dst`, look the keys up in the sorted true
    keys and redraw only the collisions, for at most `max_rounds` rounds; whatever still collides
    is drawn exactly from its source's free targets, so the result is uniform over the free
    targets and never a true edge. `true_edges` are the known edges of the relation (train +
    valid + test for evaluation), as `[2, T]` or as a `FilterIndex` (then they are not re-sorted
    on every call: pass one in a training loop). For head corruption pass `dst`, `num_src` and
    `true_edges.flip(0)`.

    Example::

        neg = filtered_negatives(test_edges[0], n_items, 1, true_edges=ei, generator=g)
        assert not contains_edges(torch.stack([test_edges[0], neg[:, 0]]), ei, n_items).any()
    """
    if num_dst <= 0:
        raise InputError(f"cannot draw negatives from a node type with {num_dst} nodes")
    device = src.device
    src = src.long().cpu()
    true_keys = _sorted_true_keys(true_edges, num_dst)
    out = torch.randint(num_dst, (src.numel(), num_neg), generator=generator)
    row_src = src.view(-1, 1).expand_as(out)
    todo = _isin_sorted(row_src * num_dst + out, true_keys).nonzero(as_tuple=True)
    for _ in range(max_rounds):
        if todo[0].numel() == 0:
            break
        redraw = torch.randint(num_dst, (todo[0].numel(),), generator=generator)
        out[todo] = redraw
        still = _isin_sorted(row_src[todo] * num_dst + redraw, true_keys)
        todo = (todo[0][still], todo[1][still])
    if todo[0].numel():
        out[todo] = _sample_complement(row_src[todo], true_keys, num_dst, generator)
    return out.to(device)


def in_batch_negatives(dst_of_batch: Tensor, *, return_mask: bool = False):
    """`[B, B-1]` batch positions: row i lists every other row j != i, whose target serves as a
    negative for row i (score `s[i, index[i]]` from a `[B, B]` score matrix).

    With `return_mask`, also a `[B, B-1]` BoolTensor that is False where the other row has the
    same target as row i (that "negative" would be the positive itself).

    Example::

        idx = in_batch_negatives(dst)                    # [B, B-1]
        neg_scores = (z_src @ z_dst.T).gather(1, idx)
    """
    b = dst_of_batch.numel()
    rows = torch.arange(b, device=dst_of_batch.device).view(-1, 1)
    others = torch.arange(max(b - 1, 0), device=dst_of_batch.device).view(1, -1)
    index = others + (others >= rows).long()
    if not return_mask:
        return index
    return index, dst_of_batch[index] != dst_of_batch.view(-1, 1)
