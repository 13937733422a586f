"""ReciprocalScorer: the shared contract, and head queries answered through the inverse relation."""
from __future__ import annotations

import pytest
import torch
from cases import ModuleContract, one_thread  # noqa: F401 (autouse fixture)

from mmgraph.nn import ComplExScorer, DistMultScorer, DotProductScorer, MLPScorer, ReciprocalScorer, RotatEScorer

DIM = 8


class TestReciprocalComplExContract(ModuleContract):
    module_class = ReciprocalScorer

    def make_module(self):
        return ReciprocalScorer(ComplExScorer())

    def make_inputs(self):
        return torch.randn(5, DIM), torch.randn(5, 2 * DIM), torch.randn(5, DIM)

    def expected_shapes(self, inputs):
        return (5,)


class TestReciprocalMLPHeadsContract(ModuleContract):
    """A base scorer with weights: gradients reach them through the head (inverse) path."""

    module_class = ReciprocalScorer

    def make_module(self):
        return ReciprocalScorer(MLPScorer(DIM, hidden_channels=12))

    def make_inputs(self):
        return torch.randn(7, DIM), torch.randn(5, 2 * DIM), torch.randn(5, DIM)

    def call(self, module, inputs):
        return module.score_heads(*inputs)

    def expected_shapes(self, inputs):
        return (5, 7)


@pytest.mark.parametrize("base", [ComplExScorer, DistMultScorer, lambda: RotatEScorer(p=2, margin=1.0)])
def test_heads_are_tail_queries_of_the_inverse_relation(base):
    scorer = ReciprocalScorer(base())
    rd = scorer.base.relation_dim(DIM)
    assert scorer.relation_dim(DIM) == 2 * rd
    h_all, t = torch.randn(9, DIM), torch.randn(4, DIM)
    forward, inverse = torch.randn(4, rd), torch.randn(4, rd)
    r = torch.cat([forward, inverse], dim=-1)
    heads = scorer.score_heads(h_all, r, t)
    torch.testing.assert_close(heads, scorer.base.score_tails(t, inverse, h_all))
    # the forward half plays no part in head queries, the inverse half none in tail queries
    torch.testing.assert_close(scorer.score_heads(h_all, torch.cat([forward * 0, inverse], -1), t), heads)
    tails = scorer.score_tails(t, r, h_all)
    torch.testing.assert_close(tails, scorer.base.score_tails(t, forward, h_all))
    torch.testing.assert_close(scorer(t, r, h_all[:4]), scorer.base(t, forward, h_all[:4]))


def test_one_to_n_tails_equal_per_triple_forward():
    scorer = ReciprocalScorer(ComplExScorer())
    h, r, t_all = torch.randn(3, DIM), torch.randn(3, 2 * DIM), torch.randn(6, DIM)
    table = scorer.score_tails(h, r, t_all)
    for j in range(6):
        torch.testing.assert_close(table[:, j], scorer(h, r, t_all[j].expand(3, -1)), atol=1e-5, rtol=1e-5)


def test_relation_init_fills_both_halves_the_base_way():
    scorer = ReciprocalScorer(RotatEScorer())
    w = torch.zeros(5, scorer.relation_dim(DIM))
    scorer.init_relations_(w)
    assert w.abs().max() <= torch.pi and (w[:, :DIM // 2] != w[:, DIM // 2:]).any()


def test_without_relation_vectors_and_bad_input():
    scorer = ReciprocalScorer(DotProductScorer())
    assert scorer.relation_dim(DIM) == 0
    h_all, t = torch.randn(5, DIM), torch.randn(2, DIM)
    torch.testing.assert_close(scorer.score_heads(h_all, None, t), t @ h_all.t())
    with pytest.raises(ValueError, match="already reciprocal"):
        ReciprocalScorer(scorer)
    with pytest.raises(ValueError, match="even size"):
        ReciprocalScorer(DistMultScorer()).score_tails(torch.randn(2, 4), torch.randn(2, 5), torch.randn(3, 4))
    assert "ComplExScorer" in repr(ReciprocalScorer(ComplExScorer()))
