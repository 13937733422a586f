import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmgraph.errors import InputError
from mmgraph.train.message_passing import (disjoint_supervision, message_passing_edges,
                                           reverse_edge_type)
from mmgraph.train.splits import contains_edges, inductive_split, split_edges

NUM_NODES = {"user": 7, "item": 9}
EDGE_TYPES = [("user", "buys", "item"), ("user", "follows", "user"), ("item", "similar", "item")]


def random_graph(seed: int) -> dict:
    """Edge types -> [2, E] with distinct edges (a duplicate would be its own leak)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for src, rel, dst in EDGE_TYPES:
        n_src, n_dst = NUM_NODES[src], NUM_NODES[dst]
        keys = torch.randperm(n_src * n_dst, generator=g)[: int(torch.randint(1, 30, (1,), generator=g))]
        out[(src, rel, dst)] = torch.stack([keys // n_dst, keys % n_dst])
    return out


def assert_no_leakage(graph: dict, splits: dict, mp: dict) -> None:
    """No valid/test edge, nor its reverse, appears among the message-passing edges."""
    for et, ei in graph.items():
        rev = reverse_edge_type(et)
        held = ei[:, torch.cat([splits[et].valid, splits[et].test])]
        assert not contains_edges(held, mp[et], NUM_NODES[et[2]]).any()
        assert not contains_edges(held.flip(0), mp[rev], NUM_NODES[et[0]]).any()


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31))
def test_message_edges_are_the_training_edges_and_never_leak(seed):
    graph = random_graph(seed)
    g = torch.Generator().manual_seed(seed)
    splits = {et: split_edges(ei.size(1), ratios=(0.6, 0.2, 0.2), generator=g) for et, ei in graph.items()}
    mp = message_passing_edges(graph, {et: s.train for et, s in splits.items()})
    assert set(mp) == set(graph) | {reverse_edge_type(et) for et in graph}
    for et, ei in graph.items():
        assert torch.equal(mp[et], ei[:, splits[et].train])
        assert torch.equal(mp[reverse_edge_type(et)], mp[et].flip(0))
    assert_no_leakage(graph, splits, mp)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31))
def test_inductive_nodes_carry_no_messages(seed):
    graph = random_graph(seed)
    et = ("user", "follows", "user")
    held, split = inductive_split(graph[et], NUM_NODES["user"], held_out_fraction=0.4, same_type=True,
                                  generator=torch.Generator().manual_seed(seed))
    train = {t: torch.arange(ei.size(1)) for t, ei in graph.items()}
    train[et] = split.train
    mp = message_passing_edges(graph, train)
    for t in (et, reverse_edge_type(et)):
        assert not torch.isin(mp[t], held).any()


def test_reverse_types_are_explicit_and_optional():
    ei = torch.tensor([[0, 1], [2, 0]])
    mp = message_passing_edges({("u", "r", "u"): ei}, {("u", "r", "u"): None})
    assert list(mp) == [("u", "r", "u"), ("u", "rev_r", "u")]
    assert mp[("u", "rev_r", "u")].tolist() == [[2, 0], [0, 1]]
    assert list(message_passing_edges({("u", "r", "u"): ei}, {("u", "r", "u"): None}, add_reverse=False)) \
        == [("u", "r", "u")]


def test_missing_training_positions_are_an_error_not_a_leak():
    graph = {("u", "r", "i"): torch.tensor([[0], [0]]), ("u", "s", "i"): torch.tensor([[1], [1]])}
    with pytest.raises(ValueError, match="missing"):
        message_passing_edges(graph, {("u", "r", "i"): torch.tensor([0])})


def test_a_relation_named_like_a_reverse_is_refused():
    graph = {("u", "r", "i"): torch.tensor([[0], [0]]), ("i", "rev_r", "u"): torch.tensor([[0], [0]])}
    with pytest.raises(InputError, match="rev_r"):
        message_passing_edges(graph, {et: None for et in graph})


@settings(max_examples=30, deadline=None)
@given(n=st.integers(0, 200), ratio=st.floats(0.01, 1.0), seed=st.integers(0, 2**31))
def test_disjoint_supervision_partitions_the_training_edges(n, ratio, seed):
    train = torch.arange(n) * 3 + 1   # positions need not be 0..n-1
    g = torch.Generator().manual_seed(seed)
    msg, sup = disjoint_supervision(train, supervision_ratio=ratio, generator=g)
    assert not torch.isin(msg, sup).any()
    assert torch.equal(torch.cat([msg, sup]).sort().values, train)
    if n:
        assert sup.numel() == min(n, max(1, round(ratio * n)))


def test_disjoint_supervision_is_seeded_and_checks_its_ratio():
    train = torch.arange(40)
    a = disjoint_supervision(train, supervision_ratio=0.25, generator=torch.Generator().manual_seed(1))
    b = disjoint_supervision(train, supervision_ratio=0.25, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(InputError):
        disjoint_supervision(train, supervision_ratio=0.0)
