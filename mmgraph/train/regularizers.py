r"""Regularisers of the link loss: the weighted nuclear 3-norm (N3) of Lacroix et al. (2018).

N3 penalises the cube of each embedding coordinate's modulus over the factors of the triples in
a batch,

.. math::
    \Omega_3 = \frac{1}{B} \sum_{(h, r, t) \in \text{batch}}
      \sum_i \left( |h_i|^3 + |r_i|^3 + |t_i|^3 \right),

a tensor-nuclear-norm bound that lets ComplEx with reciprocal relations reach state-of-the-art
numbers on WN18RR, FB15k-237 and the small knowledge graphs. For ComplEx :math:`|x_i|` is the
modulus of the complex coordinate; a reciprocal relation contributes its forward and inverse
vectors; RotatE's relation (a phase) is not penalised.
"""
from __future__ import annotations

import torch
from torch import Tensor

from mmgraph.nn.reciprocal import ReciprocalScorer
from mmgraph.nn.scorers import ComplExScorer, RotatEScorer, Scorer

__all__ = ["n3_penalty", "regularizer_factors"]


def _complex_modulus(x: Tensor) -> Tensor:
    re, im = x.chunk(2, dim=-1)
    return torch.sqrt(re.pow(2) + im.pow(2) + 1e-12)  # eps: a finite gradient at 0


def _entity_factor(scorer: Scorer, x: Tensor) -> Tensor:
    return _complex_modulus(x) if isinstance(scorer, (ComplExScorer, RotatEScorer)) else x.abs()


def _relation_factor(scorer: Scorer, r: Tensor | None) -> list[Tensor]:
    if r is None or isinstance(scorer, RotatEScorer):  # RotatE's relation is a phase
        return []
    return [_complex_modulus(r) if isinstance(scorer, ComplExScorer) else r.abs()]


def regularizer_factors(scorer: Scorer, h: Tensor, r: Tensor | None, t: Tensor) -> list[Tensor]:
    """The per-coordinate magnitudes ``[B, k]`` that N3 penalises, as the scorer reads its vectors."""
    if isinstance(scorer, ReciprocalScorer):
        forward, inverse = scorer.split_relation(r)
        return regularizer_factors(scorer.base, h, forward, t) + _relation_factor(scorer.base, inverse)
    return [_entity_factor(scorer, h), _entity_factor(scorer, t), *_relation_factor(scorer, r)]


def n3_penalty(scorer: Scorer, h: Tensor, r: Tensor | None, t: Tensor) -> Tensor:
    """:math:`\\frac{1}{B} \\sum_f \\sum |f|^3` over the batch's factors (a scalar tensor).

    ``h, t [B, d]`` are the embeddings of the batch's heads and tails, ``r [B, rd]`` (or None) the
    relation vectors of its rows.
    """
    factors = regularizer_factors(scorer, h, r, t)
    return sum(f.float().pow(3).sum() for f in factors) / max(1, h.size(0))
