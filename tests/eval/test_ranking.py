from pathlib import Path

import pytest
import torch

from mmgraph.errors import InputError
from mmgraph.eval import FilterIndex, filtered_ranks, ranks_from_scores

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def dense_filter(fi: FilterIndex, queries, answers, direction: str) -> torch.Tensor:
    """The [Q, C] mask the contract's ranking_metrics takes: other true answers, never the answer."""
    num_candidates = fi.num_dst if direction == "tail" else fi.num_src
    mask = torch.zeros(queries.numel(), num_candidates, dtype=torch.bool)
    rows, cols = fi.entries(queries, direction=direction)
    mask[rows, cols] = True
    mask[torch.arange(queries.numel()), answers] = False
    return mask


def test_filter_index_lists_true_tails_and_heads():
    ei = torch.tensor([[0, 0, 2, 0, 1], [3, 1, 1, 3, 0]])            # (0,3) twice
    fi = FilterIndex.from_edges(ei, 3, 4)
    assert fi.num_edges == 4
    rows, cols = fi.entries(torch.tensor([2, 0, 1]), direction="tail")
    assert list(zip(rows.tolist(), cols.tolist())) == [(0, 1), (1, 1), (1, 3), (2, 0)]
    rows, cols = fi.entries(torch.tensor([1, 2]), direction="head")
    assert list(zip(rows.tolist(), cols.tolist())) == [(0, 0), (0, 2)]


@pytest.mark.parametrize("direction", ["tail", "head"])
@pytest.mark.parametrize("chunk_size", [1, 3, 100])
def test_filtered_ranks_equal_ranking_on_the_dense_filter(direction, chunk_size):
    g = torch.Generator().manual_seed(0)
    n_src, n_dst = 7, 9
    ei = (torch.rand(n_src, n_dst, generator=g) < 0.4).nonzero().T
    fi = FilterIndex.from_edges(ei, n_src, n_dst)
    heads, tails = ei[0, ::2], ei[1, ::2]                              # test edges: true edges
    queries, answers = (heads, tails) if direction == "tail" else (tails, heads)
    n_cand = n_dst if direction == "tail" else n_src
    table = torch.randint(0, 3, (max(n_src, n_dst), n_cand), generator=g).float()   # many ties
    ranks = filtered_ranks(lambda q: table[q], queries, answers, fi, direction=direction,
                           chunk_size=chunk_size)
    expected = ranks_from_scores(table[queries], answers, dense_filter(fi, queries, answers, direction))
    assert torch.equal(ranks, expected)


def test_filter_never_removes_the_answer():
    # head 0 is linked to every tail: with all others filtered the answer ranks first
    ei = torch.stack([torch.zeros(5, dtype=torch.long), torch.arange(5)])
    fi = FilterIndex.from_edges(ei, 1, 5)
    scores = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0]])
    ranks = filtered_ranks(lambda q: scores[q], torch.zeros(5, dtype=torch.long), torch.arange(5), fi)
    assert ranks.tolist() == [1.0] * 5


def test_ties_count_half():
    fi = FilterIndex.from_edges(torch.tensor([[0, 0], [1, 2]]), 1, 6)    # tails 1 and 2 are true
    flat = torch.zeros(1, 6)
    # answer 1: tail 2 is filtered, 4 tied candidates remain -> optimistic 1, pessimistic 5
    ranks = filtered_ranks(lambda q: flat.expand(q.numel(), 6), torch.tensor([0]), torch.tensor([1]), fi)
    assert ranks.tolist() == [3.0]


def test_infinite_scores_tie_and_nan_is_refused():
    fi = FilterIndex.from_edges(torch.tensor([[0], [4]]), 1, 5)
    inf = float("inf")
    scores = torch.tensor([[inf, inf, -inf, 1.0, inf]])    # tail 4 is filtered
    # answer 0: one other inf ties (tail 1), nothing higher -> optimistic 1, pessimistic 2
    ranks = filtered_ranks(lambda q: scores, torch.tensor([0]), torch.tensor([0]), fi)
    assert ranks.tolist() == [1.5]
    expected = ranks_from_scores(scores, torch.tensor([2]), torch.tensor([[0, 0, 0, 0, 1]]).bool())
    ranks = filtered_ranks(lambda q: scores, torch.tensor([0]), torch.tensor([2]), fi)
    assert ranks.tolist() == expected.tolist()
    huge = torch.tensor([[3e38, 3e38, 1.0, -3e38, 0.0]])      # the row sum overflows: still exact
    ranks = filtered_ranks(lambda q: huge, torch.tensor([0]), torch.tensor([2]), fi)
    assert ranks.tolist() == [3.0]
    nan = torch.tensor([[0.0, float("nan"), 1.0, 2.0, 3.0]])
    with pytest.raises(InputError, match="NaN"):
        filtered_ranks(lambda q: nan, torch.tensor([0]), torch.tensor([0]), fi)


def test_on_umls_against_the_dense_computation():
    folder = DATA / "kg" / "umls"
    triples = [line.split("\t") for split in ("train", "valid", "test")
               for line in (folder / f"{split}.txt").read_text().splitlines() if line]
    names = sorted({e for h, _, t in triples for e in (h, t)})
    ids = {n: i for i, n in enumerate(names)}
    edges = torch.tensor([[ids[h], ids[t]] for h, r, t in triples if r == "affects"]).T
    n = len(names)
    fi = FilterIndex.from_edges(edges, n, n)
    g = torch.Generator().manual_seed(0)
    emb, rel = torch.randn(n, 16, generator=g), torch.randn(16, generator=g)
    test = edges[:, -110:]

    def distmult(q):   # <e_h, w, e_t> is symmetric: the same scorer ranks heads and tails
        return (emb[q] * rel) @ emb.T

    for direction, fn, q, a in (("tail", distmult, test[0], test[1]), ("head", distmult, test[1], test[0])):
        ranks = filtered_ranks(fn, q, a, fi, direction=direction, chunk_size=32)
        expected = ranks_from_scores(fn(q), a, dense_filter(fi, q, a, direction))
        assert torch.equal(ranks, expected)
        unfiltered = ranks_from_scores(fn(q), a)
        assert (ranks <= unfiltered).all() and (ranks < unfiltered).any()


def test_bad_input_is_explained():
    fi = FilterIndex.from_edges(torch.tensor([[0], [1]]), 2, 3)
    with pytest.raises(InputError, match="direction"):
        filtered_ranks(lambda q: torch.zeros(q.numel(), 3), torch.tensor([0]), torch.tensor([1]), fi,
                       direction="both")
    with pytest.raises(InputError, match="expected"):
        filtered_ranks(lambda q: torch.zeros(q.numel(), 2), torch.tensor([0]), torch.tensor([1]), fi)
    with pytest.raises(InputError, match="answers must lie"):
        filtered_ranks(lambda q: torch.zeros(q.numel(), 3), torch.tensor([0]), torch.tensor([3]), fi)
    with pytest.raises(InputError, match="out of range"):
        FilterIndex.from_edges(torch.tensor([[0], [3]]), 2, 3)
    assert filtered_ranks(lambda q: torch.zeros(q.numel(), 3), torch.tensor([], dtype=torch.long),
                          torch.tensor([], dtype=torch.long), fi).numel() == 0
