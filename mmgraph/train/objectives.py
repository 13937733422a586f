r"""Self-supervised objectives of `mmgraph pretrain`: no relation label enters any of them.

Pure functions over tensors (the pretraining loop in `mmgraph.train.pretrain` draws the inputs):

- :func:`edge_reconstruction_loss`: VGAE's inner-product decoder, BCE of held-out edges
  against sampled non-edges; an edge is "u and v are linked", whatever its relation name.
- :func:`masked_feature_loss`: scaled cosine error (GraphMAE) of reconstructed features, only
  on the rows that were masked at the input *and* hold a real feature.
- :func:`info_nce`: symmetric InfoNCE between two views of the same items (two modalities of a
  node, or the modalities at the two ends of an edge), in-batch negatives.
- :func:`feature_masks`: which present features to hide at the input (a pure sampling function).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from mmgraph.utils import gather_rows

__all__ = ["edge_reconstruction_loss", "masked_feature_loss", "info_nce", "feature_masks"]


def edge_reconstruction_loss(z_src: Tensor, z_dst: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
    r"""BCE of inner-product edge scores (Kipf & Welling 2016, VGAE):

    .. math::
        \mathcal L = -\frac1P \sum_{(u,v)\in P} \log\sigma(z_u^\top z_v)
                     - \frac1Q \sum_{(u,v)\in Q} \log(1 - \sigma(z_u^\top z_v))

    Args:
        z_src, z_dst: ``[N_src, d]``, ``[N_dst, d]`` embeddings of the two end types.
        pos: ``[2, P]`` held-out true edges (rows into ``z_src`` / ``z_dst``).
        neg: ``[2, Q]`` sampled non-edges.

    Example::

        loss = edge_reconstruction_loss(z["clip"], z["word"], pos_edges, neg_edges)   # scalar
    """
    pos_scores = (gather_rows(z_src, pos[0]) * gather_rows(z_dst, pos[1])).sum(-1)
    neg_scores = (gather_rows(z_src, neg[0]) * gather_rows(z_dst, neg[1])).sum(-1)
    return (F.binary_cross_entropy_with_logits(pos_scores, torch.ones_like(pos_scores))
            + F.binary_cross_entropy_with_logits(neg_scores, torch.zeros_like(neg_scores)))


def masked_feature_loss(reconstructed: Tensor, target: Tensor, rows: Tensor, *, gamma: float = 1.0) -> Tensor:
    r"""Scaled cosine error over the masked rows only (Hou et al. 2022, GraphMAE):

    .. math::
        \mathcal L = \frac1{|M|} \sum_{v \in M} \left(1 - \cos(\hat x_v, x_v)\right)^\gamma

    Cosine makes features of any scale (raw audio statistics, unit-norm text vectors) count
    alike. ``rows`` (bool ``[N]``) must be False for missing features: they are never targets,
    and rows outside it get no gradient. Returns 0 (with a graph) when no row is selected.

    Example::

        loss = masked_feature_loss(decoder(z["clip"]), x["clip"]["sound"], hidden & present)
    """
    if not bool(rows.any()):
        return reconstructed.sum() * 0.0
    cos = F.cosine_similarity(reconstructed[rows], target[rows].to(reconstructed.dtype), dim=-1)
    return (1.0 - cos).clamp_min(0.0).pow(gamma).mean()


def info_nce(a: Tensor, b: Tensor, *, temperature: float = 0.1, a_ids: Tensor | None = None,
             b_ids: Tensor | None = None) -> Tensor:
    r"""Symmetric InfoNCE (van den Oord et al. 2018; CLIP) of paired rows ``a[i]`` and ``b[i]``:

    .. math::
        \mathcal L = -\frac1{2B} \sum_i \left(\log \frac{e^{s_{ii}/\tau}}{\sum_j e^{s_{ij}/\tau}}
                     + \log \frac{e^{s_{ii}/\tau}}{\sum_j e^{s_{ji}/\tau}}\right),
        \qquad s_{ij} = \cos(a_i, b_j)

    Pairs drawn from edges repeat nodes (360 clips say one of 10 words): with ``a_ids`` /
    ``b_ids`` (``[B]`` node ids), pair ``j`` is no negative of pair ``i`` when they share a node
    (``a_ids[j] == a_ids[i]`` or ``b_ids[j] == b_ids[i]``): its other end is linked to the same
    node, or is that node. Such columns are masked out in both directions.

    Shapes: ``a [B, d]``, ``b [B, d]`` -> scalar.

    Example::

        loss = info_nce(tokens_audio, tokens_text, temperature=0.1, b_ids=word_of_clip)
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    logits = F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).t() / temperature
    eye = torch.eye(logits.size(0), dtype=torch.bool, device=logits.device)
    shared = torch.zeros_like(eye)  # shared[i, j]: pairs i and j have a node in common (symmetric)
    for ids in (a_ids, b_ids):
        if ids is not None:
            shared |= ids[:, None] == ids[None, :]
    shared &= ~eye
    target = torch.arange(logits.size(0), device=logits.device)
    a_to_b = F.cross_entropy(logits.masked_fill(shared, float("-inf")), target)
    b_to_a = F.cross_entropy(logits.t().masked_fill(shared, float("-inf")), target)
    return 0.5 * (a_to_b + b_to_a)


def feature_masks(present: Tensor, rate: float, *, generator: torch.Generator | None = None) -> Tensor:
    """Bool ``[N]``: a random share ``rate`` of the present rows (``present`` bool ``[N]``) to hide.

    Missing rows are never chosen (they have nothing to reconstruct). At least one row is hidden
    when any is present and ``rate > 0``.

    Example::

        hide = feature_masks(mask_dict["clip"]["sound"], 0.3, generator=g)
        assert not (hide & ~mask_dict["clip"]["sound"]).any()
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"mask rate must be in [0, 1], got {rate}")
    rows = present.nonzero().view(-1)
    count = int(round(rate * rows.numel()))
    if rate > 0 and rows.numel():
        count = max(count, 1)
    chosen = rows[torch.randperm(rows.numel(), generator=generator)[:count].to(rows.device)]
    hide = torch.zeros_like(present, dtype=torch.bool)
    hide[chosen] = True
    return hide
