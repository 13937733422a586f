"""Filtered full ranking (CONTRACT.md section 4), chunked, with no `[Q, C]` filter for the whole set.

For each chunk of queries the scorer gives `[B, C]` scores against every candidate. One pass
over each row, the sum of sign(s - s_answer), gives (#higher - #lower); with the number of
candidates that fixes 2 #higher + #equal, which is all the tie rule needs. The filtered
candidates, read from a CSR of true edges, are then *subtracted* from those counts by gathering
only their own scores. The cost is one GEMM-sized pass per chunk plus O(#filtered) work;
nothing is sorted and the scores are never written.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from mmgraph.errors import InputError

__all__ = ["FilterIndex", "filtered_ranks"]


def _csr(rows: Tensor, cols: Tensor, num_rows: int) -> tuple[Tensor, Tensor]:
    """CSR of (rows, cols) already sorted by (row, col)."""
    ptr = torch.zeros(num_rows + 1, dtype=torch.long)
    ptr[1:] = torch.bincount(rows, minlength=num_rows).cumsum(0)
    return ptr, cols


@dataclass(frozen=True)
class FilterIndex:
    """The true edges of one relation as two CSRs: true tails per head, true heads per tail.

    tail_ptr [num_src + 1], tail_col [T]: tails of head h are tail_col[tail_ptr[h]:tail_ptr[h+1]]
    head_ptr [num_dst + 1], head_col [T]: heads of tail t are head_col[head_ptr[t]:head_ptr[t+1]]
    Duplicate edges are stored once; columns are sorted within each row.
    """

    num_src: int
    num_dst: int
    tail_ptr: Tensor
    tail_col: Tensor
    head_ptr: Tensor
    head_col: Tensor

    @classmethod
    def from_edges(cls, edge_index: Tensor, num_src: int, num_dst: int) -> "FilterIndex":
        """Build from `[2, E]` = all true edges of the relation (train + valid + test).

        Example::

            fi = FilterIndex.from_edges(g[et].edge_index, g["user"].num_nodes, g["item"].num_nodes)
            ranks = filtered_ranks(score_tails, heads, tails, fi, direction="tail")
        """
        ei = edge_index.long().cpu()
        if ei.dim() != 2 or ei.size(0) != 2:
            raise InputError(f"edge_index must be [2, E], got shape {tuple(ei.shape)}")
        if ei.size(1) and (int(ei.min()) < 0 or int(ei[0].max()) >= num_src or int(ei[1].max()) >= num_dst):
            raise InputError(f"edge ids out of range for {num_src} source and {num_dst} target nodes")
        by_head = (ei[0] * num_dst + ei[1]).unique()
        by_tail = (ei[1] * num_src + ei[0]).unique()
        tail_ptr, tail_col = _csr(by_head // num_dst, by_head % num_dst, num_src)
        head_ptr, head_col = _csr(by_tail // num_src, by_tail % num_src, num_dst)
        return cls(num_src, num_dst, tail_ptr, tail_col, head_ptr, head_col)

    @property
    def num_edges(self) -> int:
        return int(self.tail_col.numel())

    def edge_keys(self) -> Tensor:
        """The edges as sorted unique int64 keys `src * num_dst + dst` (as `filtered_negatives` uses)."""
        heads = torch.repeat_interleave(self.tail_ptr.diff())
        return heads * self.num_dst + self.tail_col

    def to(self, device) -> "FilterIndex":
        return FilterIndex(self.num_src, self.num_dst, *(t.to(device) for t in
                           (self.tail_ptr, self.tail_col, self.head_ptr, self.head_col)))

    def entries(self, queries: Tensor, *, direction: str = "tail") -> tuple[Tensor, Tensor]:
        """Sparse coordinates of the true answers of `queries`: `(rows [M], cols [M])`, row i of a
        `[len(queries), C]` score matrix and the true candidate id (tails of heads for
        direction "tail", heads of tails for "head"), sorted by row."""
        ptr, col = (self.tail_ptr, self.tail_col) if direction == "tail" else (self.head_ptr, self.head_col)
        ptr, col = ptr.to(queries.device), col.to(queries.device)
        start = ptr[queries]
        deg = ptr[queries + 1] - start
        rows = torch.repeat_interleave(deg)
        # position of each entry inside its row's CSR segment: global counter minus segment start
        within = torch.arange(rows.numel(), device=queries.device) - (deg.cumsum(0) - deg)[rows]
        return rows, col[start[rows] + within]


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
