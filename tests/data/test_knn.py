"""knn_graph against a brute-force reference, block by block, never N x N."""
from __future__ import annotations

import pytest
import torch

from mmgraph.data.knn import knn_graph


def brute_force(x, k, mask=None):
    """Full cosine matrix; fine for the tiny inputs used here."""
    valid = torch.arange(x.size(0)) if mask is None else mask.nonzero().view(-1)
    xn = torch.nn.functional.normalize(x[valid], dim=1)
    sim = xn @ xn.T
    sim.fill_diagonal_(float("-inf"))
    k = min(k, valid.numel() - 1)
    nbr = sim.topk(k, dim=1).indices
    return {(int(valid[i]), int(valid[j])) for i in range(valid.numel()) for j in nbr[i]}


@pytest.mark.parametrize("block_size", [1, 3, 1024])
def test_matches_brute_force(block_size):
    x = torch.randn(10, 4, generator=torch.Generator().manual_seed(0))
    edge_index = knn_graph(x, 3, block_size=block_size)
    assert edge_index.shape == (2, 30) and edge_index.dtype == torch.long
    assert set(map(tuple, edge_index.T.tolist())) == brute_force(x, 3)
    assert bool((edge_index[0] != edge_index[1]).all())  # no self loops
    assert torch.equal(edge_index[0], torch.arange(10).repeat_interleave(3))


def test_mask_excludes_nodes_both_ways():
    x = torch.randn(8, 5, generator=torch.Generator().manual_seed(1))
    mask = torch.tensor([True, False, True, True, False, True, True, True])
    edge_index = knn_graph(x, 2, mask=mask, block_size=2)
    assert edge_index.size(1) == 6 * 2
    assert not set(edge_index.view(-1).tolist()) & {1, 4}
    assert set(map(tuple, edge_index.T.tolist())) == brute_force(x, 2, mask)


def test_small_inputs():
    x = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    assert knn_graph(x, 1).tolist() == [[0, 1, 2], [1, 0, 1]]
    assert knn_graph(x, 5).size(1) == 3 * 2  # k capped at N - 1
    assert knn_graph(x[:1], 3).shape == (2, 0)
    assert knn_graph(x, 2, mask=torch.tensor([True, False, False])).shape == (2, 0)


def test_memory_stays_per_block(monkeypatch):
    """Every similarity block handed to topk has at most block_size rows: no N x N matrix."""
    shapes = []
    real_topk = torch.topk

    def spy(input, *args, **kwargs):
        shapes.append(tuple(input.shape))
        return real_topk(input, *args, **kwargs)

    monkeypatch.setattr(torch, "topk", spy)
    x = torch.randn(10, 3, generator=torch.Generator().manual_seed(2))
    knn_graph(x, 2, block_size=4)
    assert shapes == [(4, 10), (4, 10), (2, 10)]
    shapes.clear()
    monkeypatch.setattr("mmgraph.data.knn._BLOCK_ELEMENTS", 30)  # the default block: 30 // N rows
    knn_graph(x, 2)
    assert shapes == [(3, 10)] * 3 + [(1, 10)]


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"x must be \[N, d\]"):
        knn_graph(torch.zeros(3), 1)
    with pytest.raises(ValueError, match="must be positive"):
        knn_graph(torch.zeros(3, 2), 0)
