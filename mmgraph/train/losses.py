"""Link losses: filtered 1-N softmax cross-entropy in both directions, and BCE with negatives."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def other_answers_mask(shape, filters: Sequence, which: Tensor, queries: Tensor, answers: Tensor,
                       direction: str) -> Tensor:
    """Bool [B, C]: True where a candidate is another known answer of row i's query.

    Row i belongs to relation `which[i]`, whose training edges are `filters[which[i]]`; the row's own
    answer is never masked. One pass per relation present in the batch, vectorised inside it.
    """
    mask = torch.zeros(shape, dtype=torch.bool, device=queries.device)
    for r, filter_index in enumerate(filters):
        rows_of_r = (which == r).nonzero().view(-1)
        if rows_of_r.numel():
            rows, cols = filter_index.entries(queries[rows_of_r], direction=direction)
            mask[rows_of_r[rows], cols] = True
    mask[torch.arange(len(answers), device=answers.device), answers] = False
    return mask


def masked_cross_entropy(logits: Tensor, target: Tensor, masked: Tensor, smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy over the candidates left in (`masked` False), label smoothing among them.

    `F.cross_entropy(label_smoothing=...)` on -inf logits would spread the smoothing over masked
    candidates too and return +inf whenever a row has another known answer.
    """
    logp = logits.float().masked_fill(masked, float("-inf")).log_softmax(dim=-1)
    nll = -logp.gather(1, target.view(-1, 1)).squeeze(1)
    if smoothing == 0:
        return nll.mean()
    left = (~masked).sum(dim=1).clamp_min(1)
    spread = -logp.masked_fill(masked, 0.0).sum(dim=1) / left
    return ((1 - smoothing) * nll + smoothing * spread).mean()


def one_to_n_loss(tail_logits: Tensor, head_logits: Tensor, tail_edges: Tensor, head_edges: Tensor, filters: Sequence,
                  tail_which: Tensor, head_which: Tensor, *, label_smoothing: float = 0.0) -> Tensor:
    """Filtered softmax cross-entropy of tail queries against all tails and head queries against all heads.

    `tail_edges [2, B]` are the edges whose tails are asked for (`tail_logits [B, N_dst]`),
    `head_edges [2, B']` those whose heads are (`head_logits [B', N_src]`); the trainer draws the
    two from independent shuffles (see `SupervisedObjective`). Rows may mix relations that link
    the same node types (`tail_which[i]` / `head_which[i]` index `filters`), so a knowledge graph's
    relations train in one matrix product per step. Other known training edges of the row's
    relation are masked out, the same filtering the evaluation applies.
    """
    tail_mask = other_answers_mask(tail_logits.shape, filters, tail_which, tail_edges[0], tail_edges[1], "tail")
    head_mask = other_answers_mask(head_logits.shape, filters, head_which, head_edges[1], head_edges[0], "head")
    return 0.5 * (masked_cross_entropy(tail_logits, tail_edges[1], tail_mask, label_smoothing)
                  + masked_cross_entropy(head_logits, head_edges[0], head_mask, label_smoothing))


def negative_sampling_loss(pos_scores: Tensor, neg_scores: Tensor) -> Tensor:
    """Binary cross-entropy: positives [B] towards 1, negatives [B, K] towards 0 (each side weighted 1)."""
    pos = F.binary_cross_entropy_with_logits(pos_scores, torch.ones_like(pos_scores))
    neg = F.binary_cross_entropy_with_logits(neg_scores, torch.zeros_like(neg_scores))
    return pos + neg
