"""Ranking and classification metrics, in torch, exactly as CONTRACT.md sections 4 and 5 define them.

Ranks: a query's rank is the mean of its optimistic rank (1 + candidates scoring strictly
higher than the target) and its pessimistic rank (1 + candidates scoring higher or equal), the
target itself and the filtered candidates left out. Classification: AUC counts a tie between a
positive and a negative as one half; AP is scikit-learn's `average_precision_score` (a step
sum over distinct thresholds, no interpolation); a score counts as positive when `>= threshold`.
"""
from __future__ import annotations

import torch
from torch import Tensor

from mmgraph.errors import InputError

__all__ = ["ranking_metrics", "ranks_from_scores", "ranks_to_metrics", "classification_metrics",
           "best_threshold", "roc_auc", "average_precision"]


def ranks_from_scores(scores: Tensor, targets: Tensor, filter_mask: Tensor | None = None) -> Tensor:
    """`[Q]` float ranks (mean of optimistic and pessimistic) of `targets` among `scores` `[Q, C]`.

    `filter_mask[q, c]` True removes candidate c from query q's competition; the target is never
    removed, whatever the mask says.
    """
    if scores.dim() != 2:
        raise InputError(f"scores must be [Q, C], got shape {tuple(scores.shape)}")
    q, c = scores.shape
    targets = torch.as_tensor(targets, device=scores.device).long().view(-1)
    if targets.numel() != q:
        raise InputError(f"targets has {targets.numel()} entries for {q} queries")
    if q and (int(targets.min()) < 0 or int(targets.max()) >= c):
        raise InputError(f"targets must lie in [0, {c}), got values in "
                         f"[{int(targets.min())}, {int(targets.max())}]")
    if torch.isnan(scores).any():
        raise InputError("scores contain NaN; a NaN score cannot be ranked")
    target_scores = scores.gather(1, targets.view(-1, 1))
    competes = torch.ones_like(scores, dtype=torch.bool)
    if filter_mask is not None:
        if filter_mask.shape != scores.shape:
            raise InputError(f"filter_mask has shape {tuple(filter_mask.shape)}, "
                             f"scores {tuple(scores.shape)}")
        competes = ~filter_mask.to(device=scores.device, dtype=torch.bool)
    competes[torch.arange(q, device=scores.device), targets] = False
    higher = ((scores > target_scores) & competes).sum(dim=1)
    higher_or_equal = ((scores >= target_scores) & competes).sum(dim=1)
    return 1.0 + (higher + higher_or_equal).double() / 2.0


def ranks_to_metrics(ranks: Tensor, ks=(1, 3, 10)) -> dict[str, float]:
    """`{"mrr": mean 1/rank, "hits@k": share of ranks <= k, ...}` over `[Q]` ranks (>= 1)."""
    ranks = torch.as_tensor(ranks).double().view(-1)
    if ranks.numel() == 0:
        raise InputError("no ranks to average: the evaluated split has no edges")
    if (ranks < 1).any() or torch.isnan(ranks).any():
        raise InputError("ranks must be numbers >= 1")
    out = {"mrr": float((1.0 / ranks).mean())}
    for k in ks:
        out[f"hits@{k}"] = float((ranks <= k).double().mean())
    return out


def ranking_metrics(scores: Tensor, targets: Tensor, filter_mask: Tensor | None = None,
                    ks=(1, 3, 10)) -> dict[str, float]:
    """MRR and Hits@k of `targets` `[Q]` (the true candidate per query) among `scores` `[Q, C]`.

    .. math::
        r_q = 1 + \\tfrac12\\big(|\\{c : s_{qc} > s_{qt}\\}| + |\\{c \\ne t : s_{qc} \\ge s_{qt}\\}|\\big),
        \\quad \\mathrm{MRR} = \\tfrac1Q \\sum_q r_q^{-1}, \\quad
        \\mathrm{Hits@}k = \\tfrac1Q \\sum_q [r_q \\le k]

    over the candidates c not removed by `filter_mask` (True = remove; never the target).

    Example::

        scores = torch.tensor([[0.9, 0.5, 0.5], [0.1, 0.2, 0.3]])
        ranking_metrics(scores, torch.tensor([1, 2]))   # ranks 2.5 and 1: mrr 0.7, hits@1 0.5
    """
    return ranks_to_metrics(ranks_from_scores(scores, targets, filter_mask), ks)


def _check_pair(pos_scores: Tensor, neg_scores: Tensor) -> tuple[Tensor, Tensor]:
    pos = torch.as_tensor(pos_scores).detach().double().view(-1).cpu()
    neg = torch.as_tensor(neg_scores).detach().double().view(-1).cpu()
    if pos.numel() == 0 or neg.numel() == 0:
        raise InputError(f"classification metrics need positives and negatives, got "
                         f"{pos.numel()} and {neg.numel()}")
    if torch.isnan(pos).any() or torch.isnan(neg).any():
        raise InputError("scores contain NaN")
    return pos, neg


def _sorted_groups(pos: Tensor, neg: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Distinct scores descending, with the cumulative true and false positives at each one."""
    scores = torch.cat([pos, neg])
    labels = torch.cat([torch.ones_like(pos), torch.zeros_like(neg)])
    values, inverse = torch.unique(scores, return_inverse=True)   # ascending
    pos_per = torch.zeros_like(values).index_add_(0, inverse, labels)
    all_per = torch.zeros_like(values).index_add_(0, inverse, torch.ones_like(labels))
    pos_per, all_per, values = pos_per.flip(0), all_per.flip(0), values.flip(0)
    tps = pos_per.cumsum(0)
    return values, tps, all_per.cumsum(0) - tps


def roc_auc(pos_scores: Tensor, neg_scores: Tensor) -> float:
    """P(pos > neg) + P(pos == neg) / 2 (the Mann-Whitney U statistic with midranks)."""
    pos, neg = _check_pair(pos_scores, neg_scores)
    values, inverse = torch.unique(torch.cat([pos, neg]), return_inverse=True)
    count = torch.bincount(inverse, minlength=values.numel()).double()
    midrank = count.cumsum(0) - (count - 1) / 2          # 1-based average rank of each value
    rank_sum = midrank[inverse[: pos.numel()]].sum()
    n_pos, n_neg = pos.numel(), neg.numel()
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(pos_scores: Tensor, neg_scores: Tensor) -> float:
    """sum_n (R_n - R_{n-1}) P_n over distinct thresholds, as sklearn's average_precision_score."""
    pos, neg = _check_pair(pos_scores, neg_scores)
    _, tps, fps = _sorted_groups(pos, neg)
    precision = tps / (tps + fps)
    recall = tps / pos.numel()
    gain = torch.diff(recall, prepend=recall.new_zeros(1))
    return float((gain * precision).sum())


def classification_metrics(pos_scores: Tensor, neg_scores: Tensor, *, threshold: float) -> dict[str, float]:
    """AUC, AP, and precision / recall / F1 predicting "true edge" where `score >= threshold`.

    Example::

        t = best_threshold(valid_pos, valid_neg)
        classification_metrics(test_pos, test_neg, threshold=t)   # {"auc", "ap", "precision", ...}
    """
    pos, neg = _check_pair(pos_scores, neg_scores)
    tp = float((pos >= threshold).sum())
    fp = float((neg >= threshold).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / pos.numel()
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"auc": roc_auc(pos, neg), "ap": average_precision(pos, neg),
            "precision": precision, "recall": recall, "f1": f1}


def best_threshold(pos_scores: Tensor, neg_scores: Tensor) -> float:
    """The threshold maximising F1 of `score >= threshold` on these (validation) scores.

    Any threshold between the best distinct score and the next lower one gives the same F1;
    the midpoint is returned (computed in float64, so it lies strictly between them).
    """
    pos, neg = _check_pair(pos_scores, neg_scores)
    values, tps, fps = _sorted_groups(pos, neg)
    f1 = 2 * tps / (pos.numel() + tps + fps)
    best = int(f1.argmax())
    if best + 1 < values.numel():
        upper, lower = float(values[best]), float(values[best + 1])
        middle = (upper + lower) / 2
        if lower < middle <= upper:  # not so for infinite scores or adjacent float64 values
            return middle
    return float(values[best])
