r"""ConvE (Dettmers et al. 2018): a 2-D convolution over the stacked head and relation embeddings."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmgraph.nn.scorers import Scorer

__all__ = ["ConvEScorer"]

# Candidates scored per block in the (non-reciprocal) head direction: each needs its own convolution.
_HEAD_BLOCK = 4096


def _grid(dim: int) -> tuple[int, int]:
    """The most square ``(rows, cols)`` with ``rows * cols = dim`` and rows <= cols."""
    rows = max(r for r in range(1, int(math.isqrt(dim)) + 1) if dim % r == 0)
    return rows, dim // rows


class ConvEScorer(Scorer):
    r"""ConvE: :math:`f(h, r, t) = \mathrm{relu}(\mathrm{vec}(\mathrm{relu}([\bar h; \bar r] * \omega)) W)^\top t`.

    :math:`\bar h, \bar r` are the embeddings reshaped to a ``rows x cols`` grid (the most square
    factorisation of ``d``) and stacked into a ``2 rows x cols`` image; :math:`\omega` are
    ``filters`` 3x3 kernels (padded, so any ``d`` works), :math:`W` projects the feature maps back
    to ``d``. Batch norm and dropout (input, feature map, hidden) follow the paper. The scorer has
    weights but no per-node state, so any encoder can feed it. Tail queries are one matrix
    product against every candidate; head queries without a reciprocal relation convolve every
    candidate head (in blocks), so use ``reciprocal: true`` with it (ConvE itself always does).

    Shapes: ``h, r, t [B, d]`` -> ``[B]``; ``score_tails(h [B, d], r [B, d], t_all [N, d]) -> [B, N]``;
    ``score_heads(h_all [N, d], r [B, d], t [B, d]) -> [B, N]``.

    Example::

        scorer = ConvEScorer(200)
        h, r, t = torch.randn(3, 4, 200).unbind(0)
        tails = scorer.score_tails(h, r, torch.randn(9, 200))   # [4, 9]
    """

    def __init__(self, dim: int, *, filters: int = 32, input_dropout: float = 0.2,
                 feature_dropout: float = 0.2, hidden_dropout: float = 0.3):
        nn.Module.__init__(self)
        self.dim, self.filters = dim, filters
        self.rows, self.cols = _grid(dim)
        self.input_dropout, self.feature_dropout, self.hidden_dropout = input_dropout, feature_dropout, hidden_dropout
        self.input_norm = nn.BatchNorm2d(1)
        self.conv = nn.Conv2d(1, filters, kernel_size=3, padding=1)
        self.feature_norm = nn.BatchNorm2d(filters)
        self.fc = nn.Linear(filters * 2 * self.rows * self.cols, dim)
        self.hidden_norm = nn.BatchNorm1d(dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in (self.input_norm, self.conv, self.feature_norm, self.fc, self.hidden_norm):
            module.reset_parameters()

    def init_relations_(self, weight: Tensor) -> Tensor:
        if weight.numel():
            nn.init.xavier_normal_(weight)
        return weight

    def query(self, h: Tensor, r: Tensor) -> Tensor:
        """The vector ``q [B, d]`` with ``f(h, r, t) = q . t``."""
        image = torch.cat([h.view(-1, 1, self.rows, self.cols), r.view(-1, 1, self.rows, self.cols)], dim=2)
        x = F.dropout(self.input_norm(image), self.input_dropout, self.training)
        x = F.relu(self.feature_norm(self.conv(x)))
        x = F.dropout2d(x, self.feature_dropout, self.training)
        x = self.fc(x.flatten(1))
        x = F.dropout(x, self.hidden_dropout, self.training)
        return F.relu(self.hidden_norm(x) if x.size(0) > 1 or not self.training else x)

    def forward(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        return (self.query(h, r) * t).sum(-1)

    def score_tails(self, h: Tensor, r: Tensor, t_all: Tensor) -> Tensor:
        return self.query(h, r) @ t_all.t()

    def score_heads(self, h_all: Tensor, r: Tensor, t: Tensor) -> Tensor:
        rows = []
        for b in range(r.size(0)):
            parts = [(self.query(h_all[i:i + _HEAD_BLOCK], r[b].expand(min(_HEAD_BLOCK, h_all.size(0) - i), -1))
                      * t[b]).sum(-1) for i in range(0, h_all.size(0), _HEAD_BLOCK)]
            rows.append(torch.cat(parts))
        return torch.stack(rows)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, grid={self.rows}x{self.cols}, filters={self.filters}"
