"""Link losses: filtered 1-N softmax cross-entropy in both directions, and BCE with negatives."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


def mask_other_answers(logits: Tensor, filter_index, queries: Tensor, answers: Tensor, direction: str) -> Tensor:
    """Set every known true candidate of each query to -inf, except the query's own answer."""
    rows, cols = filter_index.entries(queries, direction=direction)
    keep = cols != answers[rows]
    return logits.index_put((rows[keep], cols[keep]),
                            torch.tensor(float("-inf"), dtype=logits.dtype, device=logits.device))


def one_to_n_loss(score_tails: Callable[[Tensor], Tensor], score_heads: Callable[[Tensor], Tensor],
                  heads: Tensor, tails: Tensor, train_filter, *, label_smoothing: float = 0.0) -> Tensor:
    """Filtered softmax cross-entropy of each edge against all tails and against all heads.

    `score_tails(heads) -> [B, N_dst]`, `score_heads(tails) -> [B, N_src]`. Other known training
    edges are masked out of each row, so a relation with many answers per query is not punished for
    ranking its other true answers high (the same filtering the evaluation applies).
    """
    tail_logits = mask_other_answers(score_tails(heads), train_filter, heads, tails, "tail")
    head_logits = mask_other_answers(score_heads(tails), train_filter, tails, heads, "head")
    return 0.5 * (F.cross_entropy(tail_logits, tails, label_smoothing=label_smoothing)
                  + F.cross_entropy(head_logits, heads, label_smoothing=label_smoothing))


def negative_sampling_loss(pos_scores: Tensor, neg_scores: Tensor) -> Tensor:
    """Binary cross-entropy: positives [B] towards 1, negatives [B, K] towards 0 (each side weighted 1)."""
    pos = F.binary_cross_entropy_with_logits(pos_scores, torch.ones_like(pos_scores))
    neg = F.binary_cross_entropy_with_logits(neg_scores, torch.zeros_like(neg_scores))
    return pos + neg
