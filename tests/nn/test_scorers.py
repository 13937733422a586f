"""Scorers: contracts, 1-N == per-triple in both directions, and reference values."""
from __future__ import annotations

import math

import pytest
import torch
from cases import ModuleContract, one_thread  # noqa: F401 (autouse fixture)

import mmgraph.nn.scorers as scorers_module
from mmgraph.nn import (ComplExScorer, ConvEScorer, DistMultScorer, DotProductScorer, MLPScorer, RotatEScorer,
                        TransEScorer)

DIM = 8

# Every scorer configuration whose 1-N paths differ (L1 chunked vs L2 expansion).
FACTORIES = {
    "dot": DotProductScorer,
    "distmult": DistMultScorer,
    "complex": ComplExScorer,
    "rotate-l1": lambda: RotatEScorer(p=1, margin=2.0),
    "rotate-l2": lambda: RotatEScorer(p=2),
    "transe-l1": lambda: TransEScorer(p=1, margin=1.0),
    "transe-l2": lambda: TransEScorer(p=2),
    "mlp": lambda: MLPScorer(DIM, hidden_channels=12),
    "conve": lambda: ConvEScorer(DIM, filters=4),
}


def _relations(scorer, batch: int, gen=None):
    rd = scorer.relation_dim(DIM)
    if rd == 0:
        return None
    r = torch.empty(batch, rd)
    scorer.init_relations_(r)
    return r + 0.1 * torch.randn(batch, rd, generator=gen)  # distinct rows even for constant inits


class _ScorerContract(ModuleContract):
    def make_inputs(self):
        scorer = self.make_module()
        return torch.randn(5, DIM), _relations(scorer, 5), torch.randn(5, DIM)

    def expected_shapes(self, inputs):
        return (5,)


class TestDotProductContract(_ScorerContract):
    module_class = DotProductScorer

    def make_module(self):
        return DotProductScorer()


class TestDistMultContract(_ScorerContract):
    module_class = DistMultScorer

    def make_module(self):
        return DistMultScorer()


class TestComplExContract(_ScorerContract):
    module_class = ComplExScorer

    def make_module(self):
        return ComplExScorer()


class TestRotatEContract(_ScorerContract):
    module_class = RotatEScorer

    def make_module(self):
        return RotatEScorer(p=1, margin=3.0)


class TestTransEContract(_ScorerContract):
    module_class = TransEScorer

    def make_module(self):
        return TransEScorer(p=2)


class TestMLPContract(_ScorerContract):
    module_class = MLPScorer

    def make_module(self):
        return MLPScorer(DIM, hidden_channels=16)


class TestConvEContract(_ScorerContract):
    module_class = ConvEScorer

    def make_module(self):
        return ConvEScorer(DIM, filters=4)


class _TailsPath:
    """The 1-N path is a contract of its own: gradients must reach the weights through it too."""

    def make_inputs(self):
        h, r, _ = super().make_inputs()
        return h, r, torch.randn(7, DIM)

    def call(self, module, inputs):
        return module.score_tails(*inputs)

    def expected_shapes(self, inputs):
        return (5, 7)


class TestConvETailsContract(_TailsPath, TestConvEContract):
    """Gradients reach the convolution and the projection through score_tails."""


class TestMLPTailsContract(_TailsPath, TestMLPContract):
    """Gradients reach the MLP's weights through score_tails."""


@pytest.fixture(params=[False, True], ids=["one-chunk", "tiny-chunks"])
def chunking(request, monkeypatch):
    if request.param:  # force many ragged chunks through the L1 and MLP paths
        monkeypatch.setattr(scorers_module, "_CHUNK_ELEMENTS", 3 * DIM)
    return request.param


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_one_to_n_equals_per_triple_both_directions(name, chunking):
    gen = torch.Generator().manual_seed(7)
    scorer = FACTORIES[name]().eval()
    batch, num = 4, 9
    h, t = torch.randn(batch, DIM, generator=gen), torch.randn(batch, DIM, generator=gen)
    r = _relations(scorer, batch, gen)
    cand = torch.randn(num, DIM, generator=gen)

    tails = scorer.score_tails(h, r, cand)
    heads = scorer.score_heads(cand, r, t)
    assert tails.shape == heads.shape == (batch, num)
    for j in range(num):
        c = cand[j].expand(batch, DIM)
        torch.testing.assert_close(tails[:, j], scorer(h, r, c), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(heads[:, j], scorer(c, r, t), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_one_to_n_gradients_are_finite_even_at_zero_distance(name):
    scorer = FACTORIES[name]()
    h = torch.randn(3, DIM, requires_grad=True)
    r = _relations(scorer, 3)
    if r is not None:
        r = torch.zeros_like(r).requires_grad_()  # identity relation for TransE / RotatE
    cand = torch.cat([h.detach(), torch.randn(2, DIM)]).requires_grad_()  # candidate 0..2 == heads
    scores = scorer.score_tails(h, r, cand)
    scores.sum().backward()
    assert torch.isfinite(scores).all()
    assert torch.isfinite(h.grad).all() and torch.isfinite(cand.grad).all()


def test_reference_values():
    h = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    r = torch.tensor([[0.5, -1.0, 2.0, 0.0]])
    t = torch.tensor([[2.0, 1.0, -1.0, 1.0]])
    assert DotProductScorer()(h, None, t).item() == pytest.approx(2 + 2 - 3 + 4)
    assert DistMultScorer()(h, r, t).item() == pytest.approx(1 - 2 - 6 + 0)
    assert TransEScorer(p=1, margin=5.0)(h, r, t).item() == pytest.approx(5 - (0.5 + 0 + 6 + 3))
    assert TransEScorer(p=2)(h, r, t).item() == pytest.approx(-math.sqrt(0.25 + 0 + 36 + 9))


def _as_complex(x):
    re, im = x.chunk(2, dim=-1)
    return torch.complex(re.double(), im.double())


def test_complex_matches_complex_arithmetic():
    h, r, t = torch.randn(3, 6, 8).unbind(0)
    expected = (_as_complex(h) * _as_complex(r) * _as_complex(t).conj()).sum(-1).real
    torch.testing.assert_close(ComplExScorer()(h, r, t).double(), expected, atol=1e-5, rtol=1e-5)


def test_rotate_matches_complex_arithmetic():
    h, t = torch.randn(2, 6, 8).unbind(0)
    phase = torch.rand(6, 4) * 2 * math.pi
    diff = _as_complex(h) * torch.polar(torch.ones_like(phase), phase).to(torch.complex128) - _as_complex(t)
    torch.testing.assert_close(RotatEScorer(p=1, margin=4.0)(h, phase, t).double(), 4.0 - diff.abs().sum(-1),
                               atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(RotatEScorer(p=2)(h, phase, t).double(), -diff.abs().pow(2).sum(-1).sqrt(),
                               atol=1e-5, rtol=1e-5)
    # A quarter turn maps (1 + 0i) onto (0 + 1i): distance 0.
    one, i_unit = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    quarter_turn = torch.tensor([[math.pi / 2]])
    assert RotatEScorer(p=1)(one, quarter_turn, i_unit).item() == pytest.approx(0.0, abs=1e-5)


def test_relation_dims_and_bad_sizes():
    assert DotProductScorer().relation_dim(8) == 0
    for scorer in (DistMultScorer(), ComplExScorer(), TransEScorer(), MLPScorer(8)):
        assert scorer.relation_dim(8) == 8
    assert RotatEScorer().relation_dim(8) == 4
    with pytest.raises(ValueError, match="even"):
        RotatEScorer().relation_dim(7)
    with pytest.raises(ValueError, match="even"):
        ComplExScorer()(torch.randn(2, 7), torch.randn(2, 7), torch.randn(2, 7))
    with pytest.raises(ValueError, match="p must be"):
        TransEScorer(p=3)
    with pytest.raises(ValueError, match="built for size"):
        MLPScorer(8).relation_dim(16)


def test_rotate_relation_init_is_a_phase():
    w = RotatEScorer().init_relations_(torch.empty(50, 4))
    assert w.abs().max() <= math.pi and w.std() > 1.0


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_one_to_n_in_bfloat16_tracks_float32(name):
    scorer = FACTORIES[name]().eval()
    h, cand = torch.randn(3, DIM), torch.randn(5, DIM)
    r = _relations(scorer, 3)
    expected = scorer.score_tails(h, r, cand)
    low = scorer.to(torch.bfloat16)
    r16 = None if r is None else r.bfloat16()
    got = low.score_tails(h.bfloat16(), r16, cand.bfloat16())
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), expected, atol=0.1, rtol=0.05)
    assert low.score_heads(cand.bfloat16(), r16, h.bfloat16()).dtype == torch.bfloat16


def test_distmult_relations_start_at_a_constant_for_norm_bounded_embeddings():
    from mmgraph.models.config import ModelConfig
    from mmgraph.models.registry import make_scorer

    weight = torch.empty(3, 8)
    DistMultScorer(relation_init=0.5).init_relations_(weight)
    assert torch.equal(weight, torch.full((3, 8), 0.5))   # the score starts as h . t / 2
    DistMultScorer().init_relations_(weight)
    assert weight.abs().max() < 1 and weight.std() > 0   # Xavier's
    assert make_scorer(ModelConfig(scorer="distmult", embedding_norm=3.0), 8).relation_init == 0.5
    assert make_scorer(ModelConfig(scorer="distmult"), 8).relation_init is None
