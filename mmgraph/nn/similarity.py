r"""A per-relation weight on how alike two nodes' frozen features are.

A knowledge graph whose entities carry text (WordNet glosses, concept names) gains from the text
where the structure knows little: a rarely linked synset's gloss often names its hypernym. Fused
into the learned embeddings, frozen text features lowered validation MRR (README, "What `train`
chooses"); added beside the structure score they raise it. A citation graph's bag-of-words
vectors feed its GCN and this term both: a GCN smooths them over neighbours, the cosine keeps
the two papers' own words. The term is

.. math::
    s_{\mathrm{sim}}(u, r, v) = w_r \, \cos(\hat x_u, \hat x_v) \, [\hat x_u \neq \hat x_v]

where :math:`\hat x` joins a node's features, each L2-normalised (a missing one is zero), and
:math:`w_r` is one number per scored relation. A candidate whose features equal the query's (the
node itself) gets no similarity: no relation links a node to itself by default, and a perfect
match would otherwise outrank every true partner. The weights are not trained by gradient: they
start at 0 (the term is off) and :func:`mmgraph.train.score_terms.fit_score_terms` picks each
one on the validation split after training.

Shapes: ``unit_features({f: [N, d_f]}, {f: [N]}) -> [N, sum d_f]``;
``pairs(i, [B, F], [B, F]) -> [B]``; ``against_all(i, [B, F], [N, F]) -> [B, N]``.

Example::

    sim = FeatureSimilarity(num_relations=3)
    x = sim.unit_features({"gloss": torch.randn(10, 8)}, {"gloss": torch.ones(10, dtype=torch.bool)})
    sim.weights[1] = 4.0; scores = sim.against_all(1, x[:2], x)   # [2, 10], row i zero at column i
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["FeatureSimilarity"]

# Cosine at or above this counts as the same features (the node itself): float rounding of a
# unit vector's self product stays within 1e-6 of 1.
_SAME = 1.0 - 1e-5


class FeatureSimilarity(nn.Module):
    """``weights [num_relations]`` (a buffer, saved with the model) times the cosine of features."""

    def __init__(self, num_relations: int):
        super().__init__()
        self.register_buffer("weights", torch.zeros(num_relations))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.weights.zero_()

    @staticmethod
    def unit_features(x: dict[str, Tensor], mask: dict[str, Tensor]) -> Tensor:
        """A node's features joined, each L2-normalised and zero where missing, then the whole
        vector normalised again (so the cosine is a plain dot product)."""
        parts = []
        for name in sorted(x):
            part = F.normalize(x[name].float(), dim=-1)
            if name in mask:
                part = part * mask[name].to(part.dtype).unsqueeze(-1)
            parts.append(part)
        return F.normalize(torch.cat(parts, dim=-1), dim=-1)

    def applies(self, index: int) -> bool:
        """Whether relation ``index`` has a weight other than 0."""
        return bool(self.weights[index] != 0)

    def pairs(self, index: int, x_src: Tensor, x_dst: Tensor) -> Tensor:
        """``w_r cos`` of row-aligned pairs ``[B]``."""
        return self._weighted(index, (x_src * x_dst).sum(-1))

    def against_all(self, index: int, x_query: Tensor, x_all: Tensor) -> Tensor:
        """``w_r cos`` of each query row against every candidate row ``[B, N]``."""
        return self._weighted(index, x_query @ x_all.T)

    def tails(self, index: int, x_src: Tensor, x_dst_all: Tensor) -> Tensor:
        """Each query source against every candidate target ``[B, N]`` (the score terms' interface)."""
        return self.against_all(index, x_src, x_dst_all)

    def heads(self, index: int, x_src_all: Tensor, x_dst: Tensor) -> Tensor:
        """Every candidate source against each query target ``[B, N]``: the targets are the queries."""
        return self.against_all(index, x_dst, x_src_all)

    def _weighted(self, index: int, cos: Tensor) -> Tensor:
        return self.weights[index] * cos.masked_fill(cos >= _SAME, 0.0)   # the node itself: 0

    def extra_repr(self) -> str:
        return f"relations={self.weights.numel()}"
