"""The filtered 1-N loss: other known answers never compete, label smoothing stays finite."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from mmgraph.data.true_edges import FilterIndex
from mmgraph.train.losses import masked_cross_entropy, one_to_n_loss, other_answers_mask


def test_other_answers_are_masked_but_never_the_rows_own():
    # relation 0: 0->1, 0->2; relation 1: 0->3
    f0 = FilterIndex.from_edges(torch.tensor([[0, 0], [1, 2]]), 4, 4)
    f1 = FilterIndex.from_edges(torch.tensor([[0], [3]]), 4, 4)
    which = torch.tensor([0, 1])
    heads, tails = torch.tensor([0, 0]), torch.tensor([1, 3])
    mask = other_answers_mask((2, 4), [f0, f1], which, heads, tails, "tail")
    assert mask.tolist() == [[False, False, True, False], [False, False, False, False]]


def test_masked_cross_entropy_matches_dropping_the_masked_columns():
    logits = torch.randn(3, 5)
    masked = torch.tensor([[0, 1, 0, 0, 1], [0, 0, 0, 0, 0], [1, 0, 0, 1, 0]], dtype=torch.bool)
    target = torch.tensor([0, 3, 2])
    expected = torch.stack([F.cross_entropy(logits[i][~masked[i]][None], (~masked[i])[: target[i]].sum()[None])
                            for i in range(3)]).mean()
    assert torch.allclose(masked_cross_entropy(logits, target, masked), expected, atol=1e-6)
    smoothed = torch.stack([masked_cross_entropy(logits[i:i + 1], target[i:i + 1], masked[i:i + 1], 0.1)
                            for i in range(3)])
    assert torch.isfinite(smoothed).all()
    # Smoothing spread over the candidates left in = PyTorch's smoothing on the dropped columns.
    for i in range(3):
        kept = logits[i][~masked[i]][None]
        ref = F.cross_entropy(kept, (~masked[i])[: target[i]].sum()[None], label_smoothing=0.1)
        assert torch.allclose(smoothed[i], ref, atol=1e-6)


def test_mixed_relation_batch_equals_per_relation_losses():
    torch.manual_seed(0)
    f0 = FilterIndex.from_edges(torch.tensor([[0, 1, 1], [1, 2, 3]]), 4, 4)
    f1 = FilterIndex.from_edges(torch.tensor([[2, 3], [0, 0]]), 4, 4)
    heads, tails, which = torch.tensor([0, 1, 2, 3]), torch.tensor([1, 3, 0, 0]), torch.tensor([0, 0, 1, 1])
    tail_logits, head_logits = torch.randn(4, 4), torch.randn(4, 4)
    edges = torch.stack([heads, tails])
    mixed = one_to_n_loss(tail_logits, head_logits, edges, edges, [f0, f1], which, which)
    zero = torch.zeros(2, dtype=torch.long)
    parts = [one_to_n_loss(tail_logits[s], head_logits[s], edges[:, s], edges[:, s], [f], zero, zero)
             for s, f in ((slice(0, 2), f0), (slice(2, 4), f1))]
    assert torch.allclose(mixed, (parts[0] + parts[1]) / 2, atol=1e-6)


def test_tail_and_head_queries_may_come_from_different_edges():
    f0 = FilterIndex.from_edges(torch.tensor([[0, 0, 1], [1, 2, 2]]), 3, 3)
    tail_logits, head_logits = torch.randn(2, 3), torch.randn(1, 3)
    tail_edges, head_edges = torch.tensor([[0, 1], [1, 2]]), torch.tensor([[1], [2]])
    loss = one_to_n_loss(tail_logits, head_logits, tail_edges, head_edges, [f0], torch.zeros(2, dtype=torch.long),
                         torch.zeros(1, dtype=torch.long))
    # tail queries: (0, ?) answer 1 with 2 masked (another answer of 0); (1, ?) answer 2, nothing masked
    tails = torch.stack([F.cross_entropy(tail_logits[0, :2][None], torch.tensor([1])),
                         F.cross_entropy(tail_logits[1][None], torch.tensor([2]))]).mean()
    # head query (?, 2) answer 1 with 0 masked (0 -> 2 is known too)
    heads = F.cross_entropy(head_logits[0, 1:][None], torch.tensor([0]))
    assert torch.allclose(loss, 0.5 * (tails + heads), atol=1e-6)
