import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmgraph.errors import InputError
from mmgraph.train.negatives import (bernoulli_corruption, bernoulli_head_probability,
                                     filtered_negatives, in_batch_negatives, uniform_negatives)
from mmgraph.train.splits import contains_edges


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_uniform_negatives_shape_and_range():
    neg = uniform_negatives(5, 3, 40, generator=gen())
    assert neg.shape == (5, 40) and neg.dtype == torch.long
    assert int(neg.min()) == 0 and int(neg.max()) == 2
    with pytest.raises(InputError):
        uniform_negatives(5, 0, 4)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), density=st.floats(0.05, 0.9), max_rounds=st.integers(0, 3))
def test_filtered_negatives_never_return_a_true_edge(seed, density, max_rounds):
    g = gen(seed)
    n_src, n_dst = 6, 8
    true = (torch.rand(n_src, n_dst, generator=g) < density)
    true[:, 0] = False                                 # every source keeps a free target
    ei = true.nonzero().T
    src = torch.randint(n_src, (10,), generator=g)
    neg = filtered_negatives(src, n_dst, 5, true_edges=ei, generator=g, max_rounds=max_rounds)
    assert neg.shape == (10, 5)
    assert int(neg.min()) >= 0 and int(neg.max()) < n_dst
    pairs = torch.stack([src.repeat_interleave(5), neg.reshape(-1)])
    assert not contains_edges(pairs, ei, n_dst).any()


@pytest.mark.parametrize("max_rounds", [0, 4])
def test_filtered_negatives_are_uniform_over_the_free_targets(max_rounds):
    # node 0 is linked to all targets but 1, 4 and 6; max_rounds=0 forces the exact complement draw
    linked = [t for t in range(8) if t not in (1, 4, 6)]
    ei = torch.tensor([[0] * len(linked), linked])
    neg = filtered_negatives(torch.zeros(3000, dtype=torch.long), 8, 1, true_edges=ei,
                             generator=gen(1), max_rounds=max_rounds)
    counts = torch.bincount(neg.view(-1), minlength=8)
    assert set(counts.nonzero().view(-1).tolist()) == {1, 4, 6}
    assert ((counts[[1, 4, 6]] / 3000.0 - 1 / 3).abs() < 0.04).all()


def test_filtered_negatives_for_heads_use_the_flipped_edges():
    ei = torch.tensor([[0, 1, 2], [0, 0, 0]])          # target 0 has heads 0, 1, 2 of 4
    tails = torch.zeros(50, dtype=torch.long)
    heads = filtered_negatives(tails, 4, 1, true_edges=ei.flip(0), generator=gen())
    assert heads.unique().tolist() == [3]


def test_filtered_negatives_accept_a_filter_index():
    from mmgraph.data.true_edges import FilterIndex

    ei = torch.tensor([[0, 0, 1, 2, 2, 0], [1, 3, 0, 2, 4, 1]])          # (0, 1) twice
    fi = FilterIndex.from_edges(ei, 3, 5)
    src = torch.tensor([0, 1, 2, 0, 2])
    a = filtered_negatives(src, 5, 6, true_edges=ei, generator=gen(5), max_rounds=1)
    b = filtered_negatives(src, 5, 6, true_edges=fi, generator=gen(5), max_rounds=1)
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="targets"):
        filtered_negatives(src, 6, 1, true_edges=fi, generator=gen())


def test_filtered_negatives_explain_a_node_linked_to_everything():
    ei = torch.tensor([[0, 0, 0], [0, 1, 2]])
    with pytest.raises(InputError, match="source node 0 is linked to all 3"):
        filtered_negatives(torch.tensor([0]), 3, 1, true_edges=ei, generator=gen(), max_rounds=1)


def test_bernoulli_head_probability_follows_tph_and_hpt():
    one_to_many = torch.tensor([[0] * 6, list(range(6))])        # tph 6, hpt 1
    assert bernoulli_head_probability(one_to_many) == pytest.approx(6 / 7)
    assert bernoulli_head_probability(one_to_many.flip(0)) == pytest.approx(1 / 7)
    # duplicates do not count twice: 3 distinct edges, 2 heads, 2 tails -> tph = hpt
    mixed = torch.tensor([[0, 0, 1, 1], [0, 1, 1, 1]])
    assert bernoulli_head_probability(mixed) == pytest.approx(0.5)


def test_bernoulli_corruption_changes_the_side_the_statistics_ask_for():
    one_to_many = torch.tensor([[0] * 6, list(range(6))])
    n_src, n_dst, n_neg = 5000, 7000, 2000
    neg_src, neg_dst = bernoulli_corruption(one_to_many, n_src, n_dst, n_neg, generator=gen(2))
    assert neg_src.shape == neg_dst.shape == (6, n_neg)
    assert int(neg_src.max()) < n_src and int(neg_dst.max()) < n_dst
    head_changed = neg_src != one_to_many[0].view(-1, 1)
    tail_changed = neg_dst != one_to_many[1].view(-1, 1)
    assert not (head_changed & tail_changed).any()           # exactly one side is redrawn
    share_head = head_changed.double().mean().item()         # a redraw equal to the old id is rare
    assert abs(share_head - 6 / 7) < 0.02


def test_in_batch_negatives_pair_every_row_with_every_other():
    dst = torch.tensor([4, 7, 4, 9])
    index, usable = in_batch_negatives(dst, return_mask=True)
    assert index.shape == (4, 3)
    for i in range(4):
        assert sorted(index[i].tolist()) == [j for j in range(4) if j != i]
    assert torch.equal(usable, dst[index] != dst.view(-1, 1))
    assert usable.tolist()[0] == [True, False, True]
    assert in_batch_negatives(torch.tensor([3])).shape == (1, 0)
