"""The true edges of a relation, indexed both ways: what filtered ranking and negative sampling
must leave out.

Plain data (no model, no training): it lives in `mmgraph.data` so that training (splits,
negatives) and evaluation (filtered ranks) both build it without importing each other.
`mmgraph.eval.ranking.FilterIndex` is the same class, re-exported for older imports.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mmgraph.errors import InputError

__all__ = ["FilterIndex"]


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
