r"""Reciprocal relations: head queries answered as tail queries of a learned inverse relation."""
from __future__ import annotations

from torch import Tensor

from mmgraph.nn.scorers import Scorer

__all__ = ["ReciprocalScorer"]


class ReciprocalScorer(Scorer):
    r"""Wraps a scorer so that every relation :math:`r` also has an inverse :math:`r^{-1}`.

    The standard 1-N set-up of Lacroix et al. (2018) and Dettmers et al. (2018): a head query
    :math:`(?, r, t)` is scored as the tail query :math:`(t, r^{-1}, ?)`, so both directions are
    one "subject and relation against every object" product and the model need not rank heads
    with the same vector that ranks tails:

    .. math::
        f_\text{tail}(h, r, t) = f(h, w_r, t), \qquad f_\text{head}(h, r, t) = f(t, w_{r^{-1}}, h)

    The relation vector is ``[w_r | w_{r^-1}]`` (twice the base scorer's size). ``forward``
    scores the tail direction (the triple as written), which classification metrics use.

    Shapes: ``h, t [B, d]``, ``r [B, 2 * base.relation_dim(d)]`` -> ``[B]``;
    ``score_tails -> [B, N]``, ``score_heads(h_all [N, d], r, t [B, d]) -> [B, N]``.

    Example::

        scorer = ReciprocalScorer(ComplExScorer())
        h, t, r = torch.randn(4, 16), torch.randn(4, 16), torch.randn(4, 32)
        heads = scorer.score_heads(torch.randn(9, 16), r, t)   # [4, 9], through the inverse relation
    """

    def __init__(self, base: Scorer):
        if isinstance(base, ReciprocalScorer):
            raise ValueError("ReciprocalScorer: the base scorer is already reciprocal")
        super().__init__()
        self.base = base
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if hasattr(self, "base"):  # Scorer.__init__ calls this before `base` exists
            self.base.reset_parameters()

    def relation_dim(self, dim: int) -> int:
        return 2 * self.base.relation_dim(dim)

    def init_relations_(self, weight: Tensor) -> Tensor:
        for half in self.split_relation(weight):
            self.base.init_relations_(half)
        return weight

    def split_relation(self, r: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
        """``(forward, inverse)`` halves of the relation vectors ``[B, 2 * rd]``."""
        if r is None:  # a base scorer without relation vectors: nothing to invert
            return None, None
        if r.size(-1) % 2:
            raise ValueError(f"ReciprocalScorer: the relation vector must have an even size, got {r.size(-1)}")
        return r.chunk(2, dim=-1)

    def forward(self, h: Tensor, r: Tensor | None, t: Tensor) -> Tensor:
        return self.base(h, self.split_relation(r)[0], t)

    def score_tails(self, h: Tensor, r: Tensor | None, t_all: Tensor) -> Tensor:
        return self.base.score_tails(h, self.split_relation(r)[0], t_all)

    def score_heads(self, h_all: Tensor, r: Tensor | None, t: Tensor) -> Tensor:
        return self.base.score_tails(t, self.split_relation(r)[1], h_all)

    def extra_repr(self) -> str:
        return repr(self.base)
