r"""A per-relation weight on how often each node takes part in a relation in training.

A factorisation model under N3 keeps its embeddings small, so it under-states how much more
likely a well-linked node is to gain one more link of the same relation (the popular hypernyms
of WordNet, the common objects of a medical relation). The term adds that prior back, from the
training edges only:

.. math::
    s_{\mathrm{deg}}(u, r, v) = a_r \log(1 + d^{\mathrm{out}}_r(u)) + b_r \log(1 + d^{\mathrm{in}}_r(v))

where :math:`d^{\mathrm{out}}_r(u)` counts the training edges of relation :math:`r` leaving
:math:`u` and :math:`d^{\mathrm{in}}_r(v)` those entering :math:`v`. Ranking tails of a query
:math:`(u, r, ?)` reads only the second part (weight :math:`b_r`), ranking heads only the first
(:math:`a_r`); a pair's score reads both, so a pair scores the same as its entry in either
ranking. Two weights per relation because its two ends differ: on WordNet many synsets share a
few popular hypernyms, but a hypernym's hyponyms are no likelier for having many. The weights
are not trained by gradient: they start at 0 (the term is off) and
:mod:`mmgraph.train.score_terms` picks them on the validation split after training. A node added after training (cold start) has no
training edges, so no prior.

The log-degrees are a buffer ``[sum_t N_t, 2R]`` (column ``i``: out-degree under relation ``i``,
``R + i``: in-degree), filled by :meth:`set_degrees_` and saved with the model; eval-mode
embeddings carry a node's row as extra columns (:class:`mmgraph.models.LinkPredictor`).

``weights [R, 2]`` holds :math:`(a_r, b_r)`. Shapes: ``rows(t, n) -> [n, 2R]``; ``pairs(i, [B, 2R], [B, 2R]) -> [B]``;
``tails(i, [B, 2R], [N, 2R]) -> [B, N]``; ``heads(i, [N, 2R], [B, 2R]) -> [B, N]``.

Example::

    prior = DegreePrior([("e", "r", "e")], {"e": 5})
    prior.set_degrees_({("e", "r", "e"): torch.tensor([[0, 1, 2], [3, 3, 4]])})
    prior.weights[0] = 0.5; cols = prior.rows("e", 5); prior.tails(0, cols[:2], cols)   # [2, 5]
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import Tensor, nn

__all__ = ["DegreePrior"]

EdgeType = tuple[str, str, str]


class DegreePrior(nn.Module):
    """``weights [R, 2]`` times the log training degrees of a relation's two ends (both buffers)."""

    def __init__(self, relations: Sequence[EdgeType], num_nodes: Mapping[str, int]):
        super().__init__()
        self.relations = [tuple(r) for r in relations]
        self.num_nodes = dict(num_nodes)
        self._offsets, start = {}, 0
        for t, n in self.num_nodes.items():
            self._offsets[t] = start
            start += int(n)
        self.register_buffer("weights", torch.zeros(len(self.relations), 2))   # (source end, target end)
        self.register_buffer("log_degree", torch.zeros(start, 2 * len(self.relations)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.weights.zero_()

    @property
    def width(self) -> int:
        """Columns a node's row adds to an eval-mode embedding."""
        return 2 * len(self.relations)

    @torch.no_grad()
    def set_degrees_(self, train_edges: Mapping[EdgeType, Tensor]) -> "DegreePrior":
        """Fill the log-degrees from each relation's training edges ``[2, E]`` (local node ids)."""
        self.log_degree.zero_()
        num_relations = len(self.relations)
        for i, relation in enumerate(self.relations):
            src, dst = relation[0], relation[2]
            edges = train_edges.get(relation)
            if edges is None or edges.numel() == 0:
                continue
            for column, node_type, ids in ((i, src, edges[0]), (num_relations + i, dst, edges[1])):
                n = self.num_nodes[node_type]
                count = torch.bincount(ids.cpu(), minlength=n)[:n].to(self.log_degree.dtype)
                start = self._offsets[node_type]
                self.log_degree[start:start + n, column] = torch.log1p(count).to(self.log_degree.device)
        return self

    def rows(self, node_type: str, n: int, ids: Tensor | None = None) -> Tensor:
        """The log-degree rows of ``n`` nodes of a type (``ids``, or the first ``n``); nodes past the
        graph's count (added after training) get zeros."""
        known = self.num_nodes.get(node_type, 0)
        start = self._offsets.get(node_type, 0)
        out = self.log_degree.new_zeros(n, self.width)
        if ids is None:
            k = min(n, known)
            out[:k] = self.log_degree[start:start + k]
            return out
        inside = ids < known
        out[inside] = self.log_degree[start + ids[inside]]
        return out

    def applies(self, index: int) -> bool:
        """Whether relation ``index`` has a weight other than 0."""
        return bool(self.weights[index].any())

    def _ends(self, index: int, src: Tensor, dst: Tensor) -> tuple[Tensor, Tensor]:
        """``a_r log d_out`` of the sources and ``b_r log d_in`` of the targets."""
        a, b = self.weights[index]
        return a * src[..., index], b * dst[..., len(self.relations) + index]

    def pairs(self, index: int, src: Tensor, dst: Tensor) -> Tensor:
        """``a_r log d_out(u) + b_r log d_in(v)`` of row-aligned pairs ``[B]``."""
        out_part, in_part = self._ends(index, src, dst)
        return out_part + in_part

    def tails(self, index: int, src: Tensor, dst_all: Tensor) -> Tensor:
        """Each query source against every candidate target ``[B, N]``."""
        out_part, in_part = self._ends(index, src, dst_all)
        return out_part[:, None] + in_part[None, :]

    def heads(self, index: int, src_all: Tensor, dst: Tensor) -> Tensor:
        """Every candidate source against each query target ``[B, N]``."""
        out_part, in_part = self._ends(index, src_all, dst)
        return out_part[None, :] + in_part[:, None]

    def extra_repr(self) -> str:
        return f"relations={len(self.relations)}, nodes={self.log_degree.size(0)}"
