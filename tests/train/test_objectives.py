"""The self-supervised objectives of pretraining, one property each, on tiny tensors."""
from __future__ import annotations

import pytest
import torch

from mmgraph.train.objectives import edge_reconstruction_loss, feature_masks, info_nce, masked_feature_loss


def test_masked_feature_loss_reaches_only_masked_present_rows():
    torch.manual_seed(0)
    recon = torch.randn(6, 4, requires_grad=True)
    target = torch.randn(6, 4)
    present = torch.tensor([True, True, True, False, False, True])
    hidden = torch.tensor([True, False, True, True, False, False])
    rows = hidden & present                       # row 3 is hidden but missing: never a target
    loss = masked_feature_loss(recon, target, rows)
    loss.backward()
    assert loss > 0
    assert torch.all(recon.grad[~rows] == 0) and torch.all(recon.grad[rows].abs().sum(1) > 0)


def test_masked_feature_loss_is_zero_for_a_perfect_reconstruction_and_empty_selection():
    target = torch.randn(5, 3)
    rows = torch.tensor([True, False, True, False, True])
    assert masked_feature_loss(2.0 * target, target, rows).item() == pytest.approx(0.0, abs=1e-6)  # scale-free
    recon = torch.randn(5, 3, requires_grad=True)
    empty = masked_feature_loss(recon, target, torch.zeros(5, dtype=torch.bool))
    empty.backward()
    assert empty.item() == 0.0 and torch.all(recon.grad == 0)


def test_info_nce_is_lower_for_aligned_pairs():
    torch.manual_seed(0)
    a = torch.randn(16, 8)
    aligned = info_nce(a, a + 0.05 * torch.randn(16, 8), temperature=0.1)
    shuffled = info_nce(a, a[torch.randperm(16)], temperature=0.1)
    assert aligned < 0.1 < shuffled


def test_info_nce_does_not_push_a_node_away_from_itself():
    # Rows 0 and 1 share their partner node (two clips saying the same word): with ids, the
    # duplicate column is no negative, so perfectly aligned pairs cost (almost) nothing.
    torch.manual_seed(0)
    words = torch.randn(3, 8)
    b_ids = torch.tensor([0, 0, 1, 2])
    b = words[b_ids]
    a = b.clone()
    with_ids = info_nce(a, b, temperature=0.05, a_ids=torch.arange(4), b_ids=b_ids)
    without = info_nce(a, b, temperature=0.05)
    assert with_ids < 1e-3 < without
    with pytest.raises(ValueError):
        info_nce(a, b, temperature=0.0)


def test_edge_reconstruction_prefers_true_edges_with_high_scores():
    z_src = torch.tensor([[3.0, -3.0], [-3.0, 3.0]])
    z_dst = torch.tensor([[3.0, 0.0], [0.0, 3.0]])
    pos = torch.tensor([[0, 1], [0, 1]])
    neg = torch.tensor([[0, 1], [1, 0]])
    good = edge_reconstruction_loss(z_src, z_dst, pos, neg)
    bad = edge_reconstruction_loss(z_src, z_dst, neg, pos)
    assert good < 0.1 < bad


def test_feature_masks_hide_a_share_of_present_rows_only():
    present = torch.tensor([True] * 8 + [False] * 4)
    hide = feature_masks(present, 0.25, generator=torch.Generator().manual_seed(0))
    assert int(hide.sum()) == 2 and not (hide & ~present).any()
    assert int(feature_masks(present, 0.01).sum()) == 1           # at least one when asked
    assert not feature_masks(torch.zeros(4, dtype=torch.bool), 0.5).any()
    with pytest.raises(ValueError):
        feature_masks(present, 1.5)
