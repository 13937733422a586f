"""Filtered full ranking (CONTRACT.md section 4), chunked, with no `[Q, C]` filter for the whole set.

For each chunk of queries the scorer gives `[B, C]` scores against every candidate. One pass
over each row, the sum of sign(s - s_answer), gives (#higher - #lower); with the number of
candidates that fixes 2 #higher + #equal, which is all the tie rule needs. The filtered
candidates, read from a CSR of true edges, are then *subtracted* from those counts by gathering
only their own scores. The cost is one GEMM-sized pass per chunk plus O(#filtered) work;
nothing is sorted and the scores are never written.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from mmgraph.data.true_edges import FilterIndex  # re-exported: train/minibatch, train/pretrain import it here
from mmgraph.errors import InputError

__all__ = ["FilterIndex", "filtered_ranks"]


def _above_minus_below(scores: Tensor, target: Tensor, work: Tensor) -> Tensor:
    """`[B]` float64: #(s > t) - #(s < t) per row, in one pass as the sum of sign(s - t).

    For finite floats `s - t == 0` exactly when `s == t` (gradual underflow, torch's default),
    so the signs are exact, and a float32 sum of +-1 is exact below 2**24 candidates. Rows whose
    plain sum is not finite (a NaN or infinite score, where s - t may be inf - inf) are redone
    with comparisons, and a NaN score is refused. Two comparisons and two boolean sums cost
    about three times as much on CPU. `work` is a scratch tensor of scores' shape, reused
    across chunks so that each chunk does not fault in fresh pages.
    """
    accumulate = torch.float64 if scores.size(1) >= 2 ** 24 else torch.float32
    balance = torch.sub(scores, target, out=work).sign_().sum(dim=1, dtype=accumulate).double()
    redo = ~torch.isfinite(scores.sum(dim=1, dtype=accumulate))
    if redo.any():
        s, t = scores[redo], target[redo]
        if torch.isnan(s).any():
            raise InputError("score_fn gave NaN scores; a NaN score cannot be ranked")
        balance[redo] = ((s > t).sum(dim=1) - (s < t).sum(dim=1)).double()
    return balance


def filtered_ranks(score_fn: Callable[[Tensor], Tensor], queries: Tensor, answers: Tensor,
                   filter_index: FilterIndex, *, direction: str = "tail",
                   chunk_size: int = 1024) -> Tensor:
    """Filtered ranks `[Q]` (float64) of `answers` for `queries`, ties as the contract says.

    direction "tail": queries are heads h, answers tails t, candidates all `num_dst` nodes.
    direction "head": queries are tails t, answers heads h, candidates all `num_src` nodes.
    `score_fn(query_chunk [B]) -> [B, C]` scores against every candidate. Per query

    .. math::
        r = 1 + \\tfrac12\\big(|\\{c \\notin F : s_c > s_a\\}|
                      + |\\{c \\notin F, c \\ne a : s_c \\ge s_a\\}|\\big)

    with F the other true answers of the query in `filter_index` (the answer itself is never
    filtered). Scores are read, never written, so `score_fn` may return a view.

    Example::

        fi = FilterIndex.from_edges(all_edges, n_ent, n_ent)
        r = filtered_ranks(lambda h: (E[h] * R[rel]) @ E.T, test[0], test[1], fi, direction="tail")
    """
    if direction not in ("tail", "head"):
        raise InputError(f"direction must be 'tail' or 'head', got {direction!r}")
    if chunk_size < 1:
        raise InputError(f"chunk_size must be >= 1, got {chunk_size}")
    queries, answers = queries.long().view(-1), answers.long().view(-1).to(queries.device)
    if queries.numel() != answers.numel():
        raise InputError(f"{queries.numel()} queries but {answers.numel()} answers")
    num_queries, num_candidates = ((filter_index.num_src, filter_index.num_dst) if direction == "tail"
                                   else (filter_index.num_dst, filter_index.num_src))
    for name, ids, n in (("queries", queries, num_queries), ("answers", answers, num_candidates)):
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= n):
            raise InputError(f"{name} must lie in [0, {n}) for direction {direction!r}")
    # the filtered (query row, candidate) pairs of the whole set: O(#true answers), sorted by row
    rows, cols = filter_index.entries(queries, direction=direction)
    keep = cols != answers[rows]
    rows, cols = rows[keep], cols[keep]
    starts = torch.arange(0, queries.numel() + chunk_size, chunk_size, device=queries.device)
    bounds = torch.searchsorted(rows, starts).tolist()
    out, work = [], None
    for i, begin in enumerate(range(0, queries.numel(), chunk_size)):
        q, a = queries[begin:begin + chunk_size], answers[begin:begin + chunk_size]
        scores = score_fn(q)
        if scores.shape != (q.numel(), num_candidates):
            raise InputError(f"score_fn returned shape {tuple(scores.shape)}, expected "
                             f"{(q.numel(), num_candidates)}")
        target = scores.gather(1, a.to(scores.device).view(-1, 1))
        if work is None or work.size(0) < scores.size(0) or (work.dtype, work.device) != (
                scores.dtype, scores.device):
            work = torch.empty(scores.shape, dtype=scores.dtype, device=scores.device)
        balance = _above_minus_below(scores, target, work[:scores.size(0)])
        # take the filtered candidates back out: their count and their own above-minus-below
        r = (rows[bounds[i]:bounds[i + 1]] - begin).to(scores.device)
        c = cols[bounds[i]:bounds[i + 1]].to(scores.device)
        filtered, filtered_target = scores[r, c], target.view(-1)[r]
        balance -= torch.zeros_like(balance).index_add_(
            0, r, (filtered > filtered_target).double() - (filtered < filtered_target).double())
        kept = num_candidates - torch.bincount(r, minlength=q.numel()).double()   # answer included
        # with gt + eq + lt = kept and gt - lt = balance: 2 gt + eq = kept + balance, and
        # rank = 1 + (gt + (gt + eq - 1)) / 2 = (1 + kept + balance) / 2
        out.append((1.0 + kept + balance) / 2.0)
    if not out:
        return torch.empty(0, dtype=torch.float64, device=queries.device)
    return torch.cat(out)
