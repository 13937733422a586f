"""N3 regularisation: value and gradient against a hand computation, factors per scorer."""
from __future__ import annotations

import pytest
import torch

from mmgraph.errors import InputError
from mmgraph.nn import ComplExScorer, DistMultScorer, ReciprocalScorer, RotatEScorer
from mmgraph.train.config import TrainConfig
from mmgraph.train.regularizers import n3_penalty, regularizer_factors


def test_complex_n3_value_and_gradient_by_hand():
    # one complex coordinate each: h = 3+4i (|h| = 5), r = 1+0i, t = 0+2i; batch of 1
    h = torch.tensor([[3.0, 4.0]], requires_grad=True)
    r = torch.tensor([[1.0, 0.0]], requires_grad=True)
    t = torch.tensor([[0.0, 2.0]], requires_grad=True)
    penalty = n3_penalty(ComplExScorer(), h, r, t)
    torch.testing.assert_close(penalty, torch.tensor(125.0 + 1.0 + 8.0))
    penalty.backward()
    # d|z|^3 / d(re, im) = 3 |z| (re, im)
    torch.testing.assert_close(h.grad, torch.tensor([[45.0, 60.0]]))
    torch.testing.assert_close(r.grad, torch.tensor([[3.0, 0.0]]))
    torch.testing.assert_close(t.grad, torch.tensor([[0.0, 12.0]]))


def test_real_scorer_uses_absolute_values_averaged_over_the_batch():
    h, r, t = torch.tensor([[1.0, -2.0], [0.0, 0.0]]), torch.tensor([[-1.0, 1.0], [2.0, 0.0]]), torch.zeros(2, 2)
    expected = ((1 + 8) + (1 + 1 + 8)) / 2
    torch.testing.assert_close(n3_penalty(DistMultScorer(), h, r, t), torch.tensor(expected))


def test_reciprocal_relation_contributes_both_halves_and_rotate_phases_none():
    h, t = torch.randn(3, 4), torch.randn(3, 4)
    forward, inverse = torch.randn(3, 4), torch.randn(3, 4)
    recip = regularizer_factors(ReciprocalScorer(ComplExScorer()), h, torch.cat([forward, inverse], -1), t)
    plain = regularizer_factors(ComplExScorer(), h, forward, t)
    assert len(recip) == 4
    for got, want in zip(recip[:3], plain):
        torch.testing.assert_close(got, want)
    torch.testing.assert_close(recip[3], regularizer_factors(ComplExScorer(), h, inverse, t)[2])
    assert len(regularizer_factors(RotatEScorer(), h, torch.randn(3, 2), t)) == 2


def test_config_checks_the_new_options():
    assert TrainConfig.from_dict({"n3_weight": 0.01, "optimizer": "adagrad", "early_stop_metric": "auc"})
    for bad in ({"optimizer": "sgd"}, {"early_stop_metric": "loss"}, {"n3_weight": -1.0},
                {"n3_weight": 0.1, "loss": "bce"}):
        with pytest.raises(InputError, match=next(iter(bad)).split("_")[0]):
            TrainConfig.from_dict(bad)
