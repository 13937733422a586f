import importlib.util

import pytest
import torch

from mmgraph.errors import InputError
from mmgraph.train.sampler import HeteroNeighborSampler

BUYS = ("user", "buys", "item")
BOUGHT_BY = ("item", "rev_buys", "user")
FOLLOWS = ("user", "follows", "user")
NUM_NODES = {"user": 5, "item": 6}
# 5 users, 6 items; item 0 has 4 buyers, user 3 follows 4 users (incl. self-loop-free hubs)
BUYS_EI = torch.tensor([[0, 1, 2, 3, 0, 1, 4, 2, 3, 4],
                        [0, 0, 0, 0, 1, 2, 3, 4, 4, 5]])
FOLLOWS_EI = torch.tensor([[0, 1, 2, 4, 3, 0],
                           [3, 3, 3, 3, 0, 1]])
GRAPH = {BUYS: BUYS_EI, BOUGHT_BY: BUYS_EI.flip(0), FOLLOWS: FOLLOWS_EI}


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def global_edges(sub, et):
    ei = sub.edge_index[et]
    return torch.stack([sub.n_id[et[0]][ei[0]], sub.n_id[et[2]][ei[1]]])


def in_degree(et, node: int) -> int:
    return int((GRAPH[et][1] == node).sum())


@pytest.mark.parametrize("replace", [False, True])
def test_sampled_edges_exist_and_fanout_is_respected(replace):
    sampler = HeteroNeighborSampler(GRAPH, NUM_NODES, [2, 1], replace=replace)
    for seed in range(20):
        sub = sampler.sample({"item": torch.tensor([0, 4]), "user": torch.tensor([3])}, generator=gen(seed))
        for et in GRAPH:
            edges = global_edges(sub, et)
            assert torch.equal(edges, GRAPH[et][:, sub.e_id[et]])        # e_id points at the same edges
            dst_local = sub.edge_index[et][1]
            counts = torch.bincount(dst_local, minlength=sub.n_id[et[2]].numel())
            assert (counts <= 2).all()
            if not replace:   # without replacement an edge is drawn at most once
                assert sub.e_id[et].unique().numel() == sub.e_id[et].numel()
        # the seeds' own fan-out at hop 1: min(degree, 2) without replacement, exactly 2 with it
        item0 = int((sub.n_id["item"] == 0).nonzero())
        n_buyers = int((sub.edge_index[BUYS][1] == item0).sum())
        assert n_buyers == (2 if replace else min(in_degree(BUYS, 0), 2))


def test_seeds_come_first_and_seed_local_points_at_them():
    sampler = HeteroNeighborSampler(GRAPH, NUM_NODES, [3])
    seeds = torch.tensor([4, 1, 4, 0])
    sub = sampler.sample({"item": seeds}, generator=gen())
    assert sub.n_id["item"][:3].tolist() == [4, 1, 0]
    assert torch.equal(sub.n_id["item"][sub.seed_local["item"]], seeds)
    assert sub.seed_local["user"].numel() == 0
    for ids in sub.n_id.values():
        assert ids.unique().numel() == ids.numel()


def test_small_neighbourhoods_are_taken_whole_and_minus_one_takes_everything():
    sampler = HeteroNeighborSampler(GRAPH, NUM_NODES, [-1, -1])
    sub = sampler.sample({"item": torch.tensor([0])}, generator=gen())
    # hop 1: all 4 buyers of item 0; hop 2: every in-edge of those users, of every type
    assert set(sub.n_id["user"].tolist()) == {0, 1, 2, 3, 4}
    users = [0, 1, 2, 3]
    expected = int(torch.isin(FOLLOWS_EI[1], torch.tensor(users)).sum())
    assert sub.edge_index[FOLLOWS].size(1) == expected
    assert sub.edge_index[BUYS].size(1) == 4 + 0            # item 0's buyers; no new items at hop 1


def test_sampling_is_deterministic_under_a_seeded_generator():
    sampler = HeteroNeighborSampler(GRAPH, NUM_NODES, [2, 2])
    seeds = {"item": torch.tensor([0, 4]), "user": torch.tensor([3])}
    a, b = sampler.sample(seeds, generator=gen(7)), sampler.sample(seeds, generator=gen(7))
    for t in NUM_NODES:
        assert torch.equal(a.n_id[t], b.n_id[t])
    for et in GRAPH:
        assert torch.equal(a.edge_index[et], b.edge_index[et])
    draws = {tuple(sampler.sample(seeds, generator=gen(s)).e_id[BUYS].tolist()) for s in range(20)}
    assert len(draws) > 1


@pytest.mark.parametrize("replace", [False, True])
def test_each_neighbour_is_equally_likely(replace):
    # item 0 has 4 buyers; 2 of them are drawn each time: each one with probability 1/2
    sampler = HeteroNeighborSampler({BUYS: BUYS_EI}, NUM_NODES, [2], replace=replace)
    g = gen(3)
    hits = torch.zeros(5)
    trials = 1500
    for _ in range(trials):
        sub = sampler.sample({"item": torch.tensor([0])}, generator=g)
        hits[sub.n_id["user"]] += 1
    share = hits[:4] / trials
    expected = 0.5 if not replace else 1 - 0.75 ** 2
    assert ((share - expected).abs() < 0.05).all(), share


def test_bad_input_is_explained():
    with pytest.raises(InputError, match="fanouts"):
        HeteroNeighborSampler(GRAPH, NUM_NODES, [0])
    with pytest.raises(InputError, match="node ids must lie"):
        HeteroNeighborSampler({BUYS: torch.tensor([[0], [9]])}, NUM_NODES, [1])
    sampler = HeteroNeighborSampler(GRAPH, NUM_NODES, [1])
    with pytest.raises(InputError, match="unknown node type"):
        sampler.sample({"shop": torch.tensor([0])})
    with pytest.raises(InputError, match="seed ids"):
        sampler.sample({"user": torch.tensor([5])})


@pytest.mark.skipif(importlib.util.find_spec("torch_sparse") is None
                    and importlib.util.find_spec("pyg_lib") is None,
                    reason="PyG's sampler needs torch-sparse or pyg-lib, neither is installed")
def test_same_neighbourhoods_as_pyg_sampler():
    """Every neighbour taken: the same nodes. Fan-out 2: min(in-degree, 2) in-edges of each seed
    per edge type in both samplers, and every sampled edge is a real one."""
    from torch_geometric.data import HeteroData
    from torch_geometric.sampler import NeighborSampler, NodeSamplerInput

    data = HeteroData()
    for t, n in NUM_NODES.items():
        data[t].num_nodes = n
    for et, ei in GRAPH.items():
        data[et].edge_index = ei
    seeds = torch.tensor([0, 4])
    pyg_input = NodeSamplerInput(input_id=None, node=seeds, input_type="item")
    theirs = NeighborSampler(data, num_neighbors=[-1, -1]).sample_from_nodes(pyg_input)
    ours = HeteroNeighborSampler(GRAPH, NUM_NODES, [-1, -1]).sample({"item": seeds}, generator=gen())
    for t in NUM_NODES:
        assert set(theirs.node[t].tolist()) == set(ours.n_id[t].tolist())
    real = {et: set(map(tuple, ei.t().tolist())) for et, ei in GRAPH.items()}
    for seed in range(10):
        torch.manual_seed(seed)   # PyG's sampler draws from the global generator
        theirs = NeighborSampler(data, num_neighbors=[2, 2]).sample_from_nodes(pyg_input)
        ours = HeteroNeighborSampler(GRAPH, NUM_NODES, [2, 2]).sample({"item": seeds}, generator=gen(seed))
        for et in GRAPH:
            if et[2] == "item":   # only the seeds are items: every such edge is of the first hop
                want = sum(min(in_degree(et, int(v)), 2) for v in seeds)
                assert theirs.row[et].numel() == ours.edge_index[et].size(1) == want, et
            if et in theirs.row:
                pyg_edges = torch.stack([theirs.node[et[0]][theirs.row[et]], theirs.node[et[2]][theirs.col[et]]])
                assert set(map(tuple, pyg_edges.t().tolist())) <= real[et]
            assert set(map(tuple, global_edges(ours, et).t().tolist())) <= real[et]
