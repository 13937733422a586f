r"""Link scorers: stateless interaction functions of (head, relation, tail) embeddings.

As in PyKEEN, a model is a representation plus an interaction: the relation vectors live in the
model (a table), the scorer only combines what it is given. Every scorer scores

- one triple per row: ``forward(h [B, d], r [B, rd], t [B, d]) -> [B]``,
- every tail for each query: ``score_tails(h [B, d], r [B, rd], t_all [N, d]) -> [B, N]``,
- every head for each query: ``score_heads(h_all [N, d], r [B, rd], t [B, d]) -> [B, N]``,

and the 1-N forms equal the per-triple form on every pair. They are one matrix product where
the model allows it (dot product, DistMult, ComplEx, L2 distances through
:math:`\|a-b\|^2 = \|a\|^2 + \|b\|^2 - 2a^\top b`), ``torch.cdist`` for L1 distances, and in
column chunks otherwise (RotatE's modulus sum, MLP), so memory stays bounded.
``relation_dim(d)`` is the size of the relation vector a scorer needs.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["Scorer", "DotProductScorer", "DistMultScorer", "ComplExScorer", "RotatEScorer",
           "TransEScorer", "MLPScorer"]

# Elements of a broadcast [B, n, d] block in the chunked paths (about 64 MB in float32).
_CHUNK_ELEMENTS = 1 << 24


def _chunked_columns(fn, a: Tensor, b_all: Tensor, width: int) -> Tensor:
    """Apply ``fn(a [B, ...], b [n, ...]) -> [B, n]`` to column blocks of ``b_all`` and concatenate."""
    step = max(1, _CHUNK_ELEMENTS // max(1, a.size(0) * width))
    return torch.cat([fn(a, b_all[i:i + step]) for i in range(0, b_all.size(0), step)], dim=1)


def _cdist(a: Tensor, b: Tensor, p: float) -> Tensor:
    """Exact ``torch.cdist`` (no matmul expansion); float32 for the dtypes its CPU kernel lacks."""
    if a.dtype in (torch.float32, torch.float64):
        return torch.cdist(a, b, p=p, compute_mode="donot_use_mm_for_euclid_dist")
    return _cdist(a.float(), b.float(), p).to(a.dtype)


def _distance_1n(a: Tensor, b_all: Tensor, p: int) -> Tensor:
    """Pairwise Lp distances ``[B, N]`` between rows of ``a`` and ``b_all`` (p = 1 or 2)."""
    if p == 2:
        sq = a.pow(2).sum(-1, keepdim=True) + b_all.pow(2).sum(-1) - 2.0 * (a @ b_all.t())
        return sq.clamp_min(1e-12).sqrt()  # clamp: cancellation can go below 0; keeps sqrt's grad finite
    # cdist's L1 kernel streams over [B, N] without a [B, N, d] tensor: 13x the broadcast here
    return _cdist(a, b_all, 1.0)


def _modulus_distance_1n(a: Tensor, b_all: Tensor) -> Tensor:
    """RotatE's distance ``sum_k |a_k - b_k|`` over complex elements, for every pair: ``[B, N]``.

    Each complex element is a 2-d point, so this is a batched Euclidean cdist over the ``d/2``
    elements, summed, in column chunks that bound the ``[d/2, B, n]`` intermediate.
    """
    points_a = torch.stack(a.chunk(2, dim=-1), dim=-1).transpose(0, 1)  # [K, B, 2]
    points_b = torch.stack(b_all.chunk(2, dim=-1), dim=-1).transpose(0, 1)  # [K, N, 2]
    step = max(1, _CHUNK_ELEMENTS // max(1, points_a.size(0) * a.size(0)))
    return torch.cat([_cdist(points_a, points_b[:, i:i + step], 2.0).sum(0)
                      for i in range(0, b_all.size(0), step)], dim=1)


def _complex_halves(x: Tensor, name: str) -> tuple[Tensor, Tensor]:
    if x.size(-1) % 2:
        raise ValueError(f"{name}: complex embeddings need an even size, got {x.size(-1)}")
    return x.chunk(2, dim=-1)


def _rotate(x: Tensor, phase: Tensor, *, inverse: bool = False) -> Tensor:
    """Multiply the complex vector ``x = [re, im]`` by ``exp(±i phase)`` element-wise."""
    re, im = _complex_halves(x, "RotatE")
    cos, sin = phase.cos(), phase.sin()
    if inverse:
        sin = -sin
    return torch.cat([re * cos - im * sin, re * sin + im * cos], dim=-1)


def _modulus_sum(diff: Tensor) -> Tensor:
    """Sum over complex elements of the modulus (RotatE's distance); its gradient at 0 is 0."""
    return torch.linalg.vector_norm(torch.stack(diff.chunk(2, dim=-1), dim=-1), dim=-1).sum(-1)


class Scorer(nn.Module):
    """Base class: the interface every scorer implements. Stateless unless it says otherwise."""

    def __init__(self):
        super().__init__()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Nothing to reset in a stateless scorer."""

    def relation_dim(self, dim: int) -> int:
        """Size of the relation vector needed for node embeddings of size ``dim``."""
        return dim

    def init_relations_(self, weight: Tensor) -> Tensor:
        """Initialise a relation table ``[R, relation_dim(d)]`` in place, the way this model wants."""
        if weight.numel():
            nn.init.xavier_uniform_(weight)
        return weight

    def forward(self, h: Tensor, r: Tensor | None, t: Tensor) -> Tensor:
        raise NotImplementedError

    def score_tails(self, h: Tensor, r: Tensor | None, t_all: Tensor) -> Tensor:
        raise NotImplementedError

    def score_heads(self, h_all: Tensor, r: Tensor | None, t: Tensor) -> Tensor:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


class DotProductScorer(Scorer):
    r"""Dot product, no relation vector: :math:`f(h, t) = h^\top t`.

    Shapes: ``h, t [B, d]`` -> ``[B]``; ``score_tails(h [B, d], None, t_all [N, d]) -> [B, N]``.

    Example::

        scorer = DotProductScorer()
        scores = scorer(torch.randn(4, 16), None, torch.randn(4, 16))   # [4]
        table = scorer.score_tails(torch.randn(4, 16), None, torch.randn(9, 16))  # [4, 9]
    """

    def relation_dim(self, dim: int) -> int:
        return 0

    def forward(self, h: Tensor, r: Tensor | None, t: Tensor) -> Tensor:
        return (h * t).sum(-1)

    def score_tails(self, h: Tensor, r: Tensor | None, t_all: Tensor) -> Tensor:
        return h @ t_all.t()

    def score_heads(self, h_all: Tensor, r: Tensor | None, t: Tensor) -> Tensor:
        return t @ h_all.t()


class DistMultScorer(Scorer):
    r"""DistMult (Yang et al. 2015): :math:`f(h, r, t) = \sum_i h_i r_i t_i`.

    Shapes: ``h, r, t [B, d]`` -> ``[B]``; 1-N as ``(h * r) @ t_all.T``.

    Args:
        relation_init: every relation coordinate starts at this value (None: Xavier's). For
            embeddings of a fixed norm :math:`R` the first scores are then
            :math:`c R^2 \\cos(h, t)`; with Xavier's :math:`r_i \\approx \\pm 0.3` at d = 64 a
            norm-3 model's first scores stayed within about +-1.4, and Adam took hundreds of
            steps to scale them. Validation MRR over seeds 0-2 (no-config media recipe, norm 3),
            c = 0.5 / 1 / Xavier: an emoji graph with featureless subcategories .739 / .739 /
            .680, the demo graph .986 / .970 / .984, the digits from a plain manifest .985 / .983
            / .983. Unbounded embeddings keep Xavier's (a mini-batch run on the tiny test graph
            lost .13 MRR with ones).

    Example::

        scorer = DistMultScorer()
        h, r, t = torch.randn(3, 4, 16).unbind(0)
        scores = scorer(h, r, t)   # [4]
    """

    def __init__(self, *, relation_init: float | None = None):
        super().__init__()
        self.relation_init = relation_init

    def init_relations_(self, weight: Tensor) -> Tensor:
        if self.relation_init is None:
            return super().init_relations_(weight)
        with torch.no_grad():
            return weight.fill_(self.relation_init)

    def forward(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        return (h * r * t).sum(-1)

    def score_tails(self, h: Tensor, r: Tensor, t_all: Tensor) -> Tensor:
        return (h * r) @ t_all.t()

    def score_heads(self, h_all: Tensor, r: Tensor, t: Tensor) -> Tensor:
        return (t * r) @ h_all.t()


class ComplExScorer(Scorer):
    r"""ComplEx (Trouillon et al. 2016): :math:`f(h, r, t) = \mathrm{Re}(\sum_i h_i r_i \bar t_i)`.

    Embeddings of size ``d`` (even) hold ``d/2`` complex numbers as ``[real | imaginary]``; the
    relation vector is complex too (size ``d``).

    Shapes: ``h, r, t [B, d]`` -> ``[B]``; 1-N as one matrix product.

    Example::

        scorer = ComplExScorer()
        h, r, t = torch.randn(3, 4, 16).unbind(0)
        scores = scorer(h, r, t)   # [4]
    """

    @staticmethod
    def _hr(h: Tensor, r: Tensor) -> Tensor:
        """The real vector ``q`` with ``f(h, r, t) = q . t`` (q = [Re(h r), Im(h r)])."""
        h_re, h_im = _complex_halves(h, "ComplEx")
        r_re, r_im = _complex_halves(r, "ComplEx")
        return torch.cat([h_re * r_re - h_im * r_im, h_re * r_im + h_im * r_re], dim=-1)

    @staticmethod
    def _rt(r: Tensor, t: Tensor) -> Tensor:
        """The real vector ``q`` with ``f(h, r, t) = q . h`` (q = [Re(r conj t), -Im(r conj t)])."""
        r_re, r_im = _complex_halves(r, "ComplEx")
        t_re, t_im = _complex_halves(t, "ComplEx")
        return torch.cat([r_re * t_re + r_im * t_im, r_re * t_im - r_im * t_re], dim=-1)

    def forward(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        return (self._hr(h, r) * t).sum(-1)

    def score_tails(self, h: Tensor, r: Tensor, t_all: Tensor) -> Tensor:
        return self._hr(h, r) @ t_all.t()

    def score_heads(self, h_all: Tensor, r: Tensor, t: Tensor) -> Tensor:
        return self._rt(r, t) @ h_all.t()


class RotatEScorer(Scorer):
    r"""RotatE (Sun et al. 2019): :math:`f(h, r, t) = \gamma - \| h \circ e^{i\theta_r} - t \|`.

    Embeddings of size ``d`` (even) hold ``d/2`` complex numbers; the relation vector holds
    ``d/2`` phases. ``p=1`` is the paper's distance, the sum of complex moduli (chunked in 1-N);
    ``p=2`` the Euclidean norm, one matrix product in 1-N. Rotations preserve norms, so head
    scoring rotates the tail back: :math:`\|h \circ r - t\| = \|h - t \circ \bar r\|`.

    Shapes: ``h, t [B, d]``, ``r [B, d/2]`` -> ``[B]``.

    Example::

        scorer = RotatEScorer(margin=6.0)
        h, t, r = torch.randn(4, 16), torch.randn(4, 16), torch.rand(4, 8) * 6.28
        scores = scorer(h, r, t)   # [4]
    """

    def __init__(self, *, p: int = 1, margin: float = 0.0):
        if p not in (1, 2):
            raise ValueError(f"RotatEScorer: p must be 1 or 2, got {p}")
        super().__init__()
        self.p = p
        self.margin = float(margin)

    def relation_dim(self, dim: int) -> int:
        if dim % 2:
            raise ValueError(f"RotatEScorer: the embedding size must be even, got {dim}")
        return dim // 2

    def init_relations_(self, weight: Tensor) -> Tensor:
        with torch.no_grad():
            return weight.uniform_(-math.pi, math.pi)

    def _distance(self, diff: Tensor) -> Tensor:
        return _modulus_sum(diff) if self.p == 1 else torch.linalg.vector_norm(diff, dim=-1)

    def _distance_1n(self, a: Tensor, b_all: Tensor) -> Tensor:
        return _modulus_distance_1n(a, b_all) if self.p == 1 else _distance_1n(a, b_all, 2)

    def forward(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        return self.margin - self._distance(_rotate(h, r) - t)

    def score_tails(self, h: Tensor, r: Tensor, t_all: Tensor) -> Tensor:
        return self.margin - self._distance_1n(_rotate(h, r), t_all)

    def score_heads(self, h_all: Tensor, r: Tensor, t: Tensor) -> Tensor:
        return self.margin - self._distance_1n(_rotate(t, r, inverse=True), h_all)

    def extra_repr(self) -> str:
        return f"p={self.p}, margin={self.margin}"


class TransEScorer(Scorer):
    r"""TransE (Bordes et al. 2013): :math:`f(h, r, t) = \gamma - \|h + r - t\|_p`.

    ``p=2`` scores 1-N through the expansion :math:`\|a-b\|^2 = \|a\|^2 + \|b\|^2 - 2a^\top b`
    (one matrix product); ``p=1`` with ``torch.cdist``. Heads use ``h - (t - r)``.

    Shapes: ``h, r, t [B, d]`` -> ``[B]``.

    Example::

        scorer = TransEScorer(p=2)
        h, r, t = torch.randn(3, 4, 16).unbind(0)
        scores = scorer(h, r, t)   # [4]
    """

    def __init__(self, *, p: int = 1, margin: float = 0.0):
        if p not in (1, 2):
            raise ValueError(f"TransEScorer: p must be 1 or 2, got {p}")
        super().__init__()
        self.p = p
        self.margin = float(margin)

    def forward(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        return self.margin - torch.linalg.vector_norm(h + r - t, ord=self.p, dim=-1)

    def score_tails(self, h: Tensor, r: Tensor, t_all: Tensor) -> Tensor:
        return self.margin - _distance_1n(h + r, t_all, self.p)

    def score_heads(self, h_all: Tensor, r: Tensor, t: Tensor) -> Tensor:
        return self.margin - _distance_1n(t - r, h_all, self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}, margin={self.margin}"


class MLPScorer(Scorer):
    r"""A two-layer perceptron on the concatenation: :math:`f = w_2^\top \sigma(W_1 [h; r; t] + b_1) + b_2`.

    The first layer splits into ``W_h h + W_r r + W_t t``, so 1-N scoring computes the head and
    tail parts once and only the hidden activations per pair, in bounded chunks.

    Shapes: ``h, r, t [B, dim]`` -> ``[B]``.

    Example::

        scorer = MLPScorer(16, hidden_channels=32)
        h, r, t = torch.randn(3, 4, 16).unbind(0)
        scores = scorer(h, r, t)   # [4]
    """

    def __init__(self, dim: int, *, hidden_channels: int | None = None):
        nn.Module.__init__(self)  # not Scorer.__init__: reset_parameters needs the layers first
        self.dim = dim
        self.hidden_channels = hidden_channels or 2 * dim
        self.lin_h = nn.Linear(dim, self.hidden_channels)
        self.lin_r = nn.Linear(dim, self.hidden_channels, bias=False)
        self.lin_t = nn.Linear(dim, self.hidden_channels, bias=False)
        self.lin_out = nn.Linear(self.hidden_channels, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in (self.lin_h, self.lin_r, self.lin_t, self.lin_out):
            lin.reset_parameters()

    def relation_dim(self, dim: int) -> int:
        if dim != self.dim:
            raise ValueError(f"MLPScorer was built for size {self.dim}, asked about {dim}")
        return dim

    def _out(self, hidden: Tensor) -> Tensor:
        return self.lin_out(torch.relu(hidden)).squeeze(-1)

    def forward(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        return self._out(self.lin_h(h) + self.lin_r(r) + self.lin_t(t))

    def score_tails(self, h: Tensor, r: Tensor, t_all: Tensor) -> Tensor:
        query, cand = self.lin_h(h) + self.lin_r(r), self.lin_t(t_all)
        return _chunked_columns(lambda q, c: self._out(q[:, None, :] + c[None]), query, cand,
                                self.hidden_channels)

    def score_heads(self, h_all: Tensor, r: Tensor, t: Tensor) -> Tensor:
        query, cand = self.lin_t(t) + self.lin_r(r), self.lin_h(h_all)
        return _chunked_columns(lambda q, c: self._out(q[:, None, :] + c[None]), query, cand,
                                self.hidden_channels)

    def extra_repr(self) -> str:
        return f"{self.dim}, hidden_channels={self.hidden_channels}"
