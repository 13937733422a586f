from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmgraph.errors import InputError
from mmgraph.train.splits import (EdgeSplit, contains_edges, inductive_split, reverse_duplicates,
                                  split_edges)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def assert_partition(split: EdgeSplit, num_edges: int) -> None:
    """The three parts are disjoint and together cover 0 .. num_edges - 1 exactly once."""
    everything = torch.cat([split.train, split.valid, split.test])
    assert everything.numel() == num_edges
    assert torch.equal(everything.sort().values, torch.arange(num_edges))


def test_split_from_column_reads_positions():
    column = torch.tensor([0, 2, 1, 0, 2, 0])
    s = split_edges(6, split=column)
    assert s.train.tolist() == [0, 3, 5]
    assert s.valid.tolist() == [2]
    assert s.test.tolist() == [1, 4]


def test_split_column_with_bad_value_names_the_row():
    with pytest.raises(InputError, match="row 3 has value 7"):
        split_edges(4, split=torch.tensor([0, 1, 7, 2]))
    with pytest.raises(InputError, match="3 values for 4 edges"):
        split_edges(4, split=torch.tensor([0, 1, 2]))


@settings(max_examples=40, deadline=None)
@given(num_edges=st.integers(0, 300), seed=st.integers(0, 2**31))
def test_random_split_is_a_partition_with_the_asked_sizes(num_edges, seed):
    s = split_edges(num_edges, ratios=(0.7, 0.1, 0.2), generator=torch.Generator().manual_seed(seed))
    assert_partition(s, num_edges)
    assert s.valid.numel() == round(0.1 * num_edges)
    assert s.test.numel() == min(round(0.2 * num_edges), num_edges - s.valid.numel())


def test_random_split_is_seeded():
    a = split_edges(50, generator=torch.Generator().manual_seed(3))
    b = split_edges(50, generator=torch.Generator().manual_seed(3))
    c = split_edges(50, generator=torch.Generator().manual_seed(4))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a.test, c.test)


def test_bad_ratios_are_refused():
    with pytest.raises(InputError, match="summing to 1"):
        split_edges(10, ratios=(0.5, 0.2, 0.2))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31), fraction=st.floats(0.0, 1.0), same_type=st.booleans())
def test_inductive_held_out_nodes_touch_no_training_edge(seed, fraction, same_type):
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, 10, (2, 40), generator=g)
    held, s = inductive_split(ei, 10, held_out_fraction=fraction, same_type=same_type, generator=g)
    assert_partition(s, 40)
    assert held.numel() == round(fraction * ei[0].unique().numel())
    assert not torch.isin(ei[0, s.train], held).any()
    if same_type:
        assert not torch.isin(ei[1, s.train], held).any()
    # every held-out edge touches a held-out node
    evaluated = torch.cat([s.valid, s.test])
    touches = torch.isin(ei[0, evaluated], held)
    if same_type:
        touches |= torch.isin(ei[1, evaluated], held)
    assert touches.all()


def test_inductive_valid_and_test_nodes_are_disjoint():
    ei = torch.stack([torch.arange(20).repeat_interleave(2), torch.arange(40) % 7])
    held, s = inductive_split(ei, 20, held_out_fraction=0.5, generator=torch.Generator().manual_seed(0))
    valid_nodes, test_nodes = set(ei[0, s.valid].tolist()), set(ei[0, s.test].tolist())
    assert valid_nodes and test_nodes and not valid_nodes & test_nodes
    assert valid_nodes | test_nodes == set(held.tolist())


def test_contains_edges():
    ref = torch.tensor([[0, 1, 2], [1, 2, 0]])
    query = torch.tensor([[0, 1, 2, 2], [1, 0, 0, 2]])
    assert contains_edges(query, ref, 3).tolist() == [True, False, True, False]
    assert contains_edges(query, ref[:, :0], 3).tolist() == [False] * 4


def test_reverse_duplicates_by_hand():
    train = torch.tensor([[0, 1, 3], [1, 2, 3]])
    test = torch.tensor([[1, 2, 0, 3], [0, 1, 2, 3]])   # (1,0) and (2,1) reverse train edges
    assert reverse_duplicates(test, train, num_nodes=4).tolist() == [True, True, False, True]


def _read_triples(path: Path) -> list[tuple[str, str, str]]:
    return [tuple(line.split("\t")) for line in path.read_text().splitlines() if line]


def test_reverse_duplicates_on_umls_match_a_set_lookup():
    folder = DATA / "kg" / "umls"
    train, test = _read_triples(folder / "train.txt"), _read_triples(folder / "test.txt")
    names = sorted({e for h, _, t in train + test for e in (h, t)})
    ids = {n: i for i, n in enumerate(names)}
    relation = max({r for _, r, _ in test}, key=lambda r: sum(x[1] == r for x in test))

    def edges(triples):
        return torch.tensor([[ids[h] for h, r, _ in triples if r == relation],
                             [ids[t] for _, r, t in triples if r == relation]])

    tr, te = edges(train), edges(test)
    expected = [(int(t), int(h)) in set(zip(tr[0].tolist(), tr[1].tolist())) for h, t in te.T]
    found = reverse_duplicates(te, tr, num_nodes=len(names))
    assert found.tolist() == expected
    assert found.any()   # UMLS really has inverse pairs across train and test
