"""VariationalHead, kl_divergence and KLSchedule."""
from __future__ import annotations

import math

import pytest
import torch
from cases import ModuleContract, one_thread  # noqa: F401 (autouse fixture)

from mmgraph.nn import KLSchedule, VariationalHead
from mmgraph.nn.variational import kl_divergence

TYPES = ["clip", "word"]


class TestVariationalHeadContract(ModuleContract):
    module_class = VariationalHead

    def make_module(self):
        return VariationalHead(8, 4, TYPES)

    def make_inputs(self):
        return ({"clip": torch.randn(5, 8), "word": torch.randn(3, 8)},)

    def expected_shapes(self, inputs):
        shapes = {"clip": (5, 4), "word": (3, 4)}
        return (shapes, shapes, shapes)


def test_training_samples_and_eval_returns_the_mean():
    head = VariationalHead(8, 4, TYPES)
    x = {"clip": torch.randn(2000, 8), "word": torch.randn(3, 8)}
    z1, mu, logvar = head(x)
    z2, _, _ = head(x)
    assert not torch.equal(z1["clip"], z2["clip"])
    # The standardised noise is N(0, 1).
    eps = ((z1["clip"] - mu["clip"]) / torch.exp(0.5 * logvar["clip"])).detach()
    assert abs(eps.mean().item()) < 0.05 and abs(eps.std().item() - 1) < 0.05
    head.eval()
    z, mu, _ = head(x)
    assert all(torch.equal(z[t], mu[t]) for t in TYPES)


def test_kl_matches_the_closed_form_of_torch_distributions():
    mu = {"a": torch.randn(6, 3), "b": torch.randn(4, 3)}
    logvar = {"a": torch.randn(6, 3), "b": torch.randn(4, 3)}
    std = torch.exp(0.5 * torch.cat(list(logvar.values())))
    q = torch.distributions.Normal(torch.cat(list(mu.values())), std)
    p = torch.distributions.Normal(torch.zeros(10, 3), torch.ones(10, 3))
    expected = torch.distributions.kl_divergence(q, p).sum(-1).mean()
    torch.testing.assert_close(kl_divergence(mu, logvar), expected)
    assert kl_divergence({"a": torch.zeros(3, 2)}, {"a": torch.zeros(3, 2)}).item() == 0.0


def test_free_bits_floor_each_dimension_and_stop_its_gradient():
    # Dimension 0 is far from the prior (KL 2.0 per node), dimension 1 close (KL 0.005).
    mu = torch.tensor([[2.0, 0.1], [-2.0, -0.1]], requires_grad=True)
    logvar = torch.zeros(2, 2)
    kl = kl_divergence({"a": mu}, {"a": logvar}, free_bits=0.5)
    assert kl.item() == pytest.approx(2.0 + 0.5)
    kl.backward()
    assert mu.grad[:, 1].abs().sum() == 0 and mu.grad[:, 0].abs().sum() > 0
    assert kl_divergence({"a": mu}, {"a": logvar}).item() == pytest.approx(2.0 + 0.005)
    with pytest.raises(ValueError):
        kl_divergence({"a": mu}, {"a": logvar}, free_bits=-1)


def test_logvar_is_clamped_so_exp_cannot_overflow():
    head = VariationalHead(2, 2, ["a"], logvar_limit=5.0)
    with torch.no_grad():
        head.lin_logvar["a"].bias.fill_(1e4)
    z, _, logvar = head({"a": torch.randn(3, 2)})
    assert logvar["a"].max() == 5.0 and torch.isfinite(z["a"]).all()


def test_kl_schedule_warms_up_linearly():
    schedule = KLSchedule(1e-3, warmup_epochs=10)
    assert [schedule(e) for e in (0, 5, 10, 50)] == pytest.approx([0.0, 5e-4, 1e-3, 1e-3])
    assert KLSchedule(0.5)(0) == 0.5
    assert "warmup_epochs=10" in repr(schedule)
    with pytest.raises(ValueError):
        KLSchedule(-1.0)
    with pytest.raises(ValueError):
        schedule(-1)
    assert math.isclose(KLSchedule(2.0, warmup_epochs=4)(1), 0.5)
