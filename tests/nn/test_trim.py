"""Per-layer trimming of a sampled subgraph gives the seeds the embeddings (and gradients) of the
untrimmed subgraph, for every conv (own trimming: sage, rgcn; cut after: the others)."""
import pytest
import torch

from mmgraph.errors import InputError
from mmgraph.models import GraphSchema, LinkPredictor, ModelConfig
from mmgraph.nn.trim import layer_rows, trim_csr
from mmgraph.nn.aggregate import to_csr
from mmgraph.train.sampler import HeteroNeighborSampler

NUM = {"user": 40, "item": 30, "tag": 12}
BUYS, TAGGED = ("user", "buys", "item"), ("item", "tagged", "tag")
EDGE_TYPES = [BUYS, ("item", "rev_buys", "user"), TAGGED, ("tag", "rev_tagged", "item"), ("user", "follows", "user")]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def graph(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    edges = {}
    for et, count in ((BUYS, 150), (TAGGED, 60), (("user", "follows", "user"), 80)):
        edges[et] = torch.stack([torch.randint(NUM[et[0]], (count,), generator=gen),
                                 torch.randint(NUM[et[2]], (count,), generator=gen)])
    edges[("item", "rev_buys", "user")] = edges[BUYS].flip(0)
    edges[("tag", "rev_tagged", "item")] = edges[TAGGED].flip(0)
    x = {"user": {"feat": torch.randn(NUM["user"], 8, generator=gen)},
         "item": {"feat": torch.randn(NUM["item"], 6, generator=gen)}}
    mask = {"user": {"feat": torch.rand(NUM["user"], generator=gen) > 0.2},
            "item": {"feat": torch.ones(NUM["item"], dtype=torch.bool)}}
    return edges, x, mask


def model(conv: str, num_layers: int, **options) -> LinkPredictor:
    dims = {"user": {"feat": 8}, "item": {"feat": 6}, "tag": {}}
    modalities = {t: {f: "vector" for f in fs} for t, fs in dims.items()}
    schema = GraphSchema(tuple(NUM), tuple(EDGE_TYPES), (BUYS,), dims, modalities, dict(NUM))
    torch.manual_seed(0)
    return LinkPredictor(ModelConfig(channels=16, num_layers=num_layers, conv=conv, dropout=0.0, **options), schema)


def sample(edges, fanouts, seed: int = 1):
    sampler = HeteroNeighborSampler(edges, NUM, fanouts)
    seeds = {"user": torch.tensor([3, 7, 3, 11]), "item": torch.tensor([0, 5, 29])}
    return sampler.sample(seeds, generator=torch.Generator().manual_seed(seed))


def embed_both(lp, sub, x, mask):
    x_sub = {t: {f: v[sub.n_id[t]] for f, v in fs.items()} for t, fs in x.items()}
    m_sub = {t: {f: v[sub.n_id[t]] for f, v in fs.items()} for t, fs in mask.items()}
    full, _ = lp.embed(x_sub, m_sub, sub.edge_index, n_id_dict=sub.n_id)
    trimmed, _ = lp.embed(x_sub, m_sub, sub.edge_index, n_id_dict=sub.n_id,
                          num_sampled_nodes_dict=sub.num_sampled_nodes)
    return full, trimmed


def test_sampler_records_hops_in_order():
    edges, _, _ = graph()
    sub = sample(edges, [3, 2])
    for t, counts in sub.num_sampled_nodes.items():
        assert len(counts) == 3 and sum(counts) == sub.n_id[t].numel()
    assert sub.num_sampled_nodes["user"][0] == 3 and sub.num_sampled_nodes["item"][0] == 3
    for et, counts in sub.num_sampled_edges.items():
        assert len(counts) == 2 and sum(counts) == sub.edge_index[et].size(1)
        # an edge of hop k ends at a node added at hop k-1 and starts at one added at hop <= k
        hop_of = {t: torch.repeat_interleave(torch.arange(3), torch.tensor(c)) for t, c in sub.num_sampled_nodes.items()}
        edge_hop = torch.repeat_interleave(torch.arange(1, 3), torch.tensor(counts))
        ei = sub.edge_index[et]
        assert torch.equal(hop_of[et[2]][ei[1]], edge_hop - 1)
        assert (hop_of[et[0]][ei[0]] <= edge_hop).all()


@pytest.mark.parametrize("conv", ["sage", "rgcn", "hgt", "gcn", "compgcn"])
@pytest.mark.parametrize("fanouts", [[4], [3, 2], [2, 2, 2]])
def test_trimmed_seeds_equal_untrimmed(conv, fanouts):
    edges, x, mask = graph()
    lp = model(conv, len(fanouts)).eval()
    sub = sample(edges, fanouts)
    with torch.no_grad():
        full, trimmed = embed_both(lp, sub, x, mask)
    for t, z in trimmed.items():
        seeds = sub.num_sampled_nodes[t][0]
        assert z.shape == (seeds, 16)
        torch.testing.assert_close(z, full[t][:seeds], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("conv", ["sage", "hgt"])
def test_trimmed_gradients_equal_untrimmed(conv):
    """Training mode, no dropout and a linear head: the seeds' loss has the same gradients."""
    edges, x, mask = graph()
    lp = model(conv, 2, variational=False).train()
    sub = sample(edges, [3, 2])
    full, trimmed = embed_both(lp, sub, x, mask)
    grads = []
    for z in (full, trimmed):
        lp.zero_grad()
        loss = sum((z[t][:sub.num_sampled_nodes[t][0]] ** 2).sum() for t in z)
        loss.backward()
        grads.append({n: p.grad.clone() for n, p in lp.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for name, g in grads[0].items():
        torch.testing.assert_close(grads[1][name], g, rtol=1e-4, atol=1e-5, msg=name)


def test_no_layers_keeps_the_seeds_only():
    edges, x, mask = graph()
    lp = model("sage", 0).eval()
    sub = HeteroNeighborSampler({}, NUM, [1]).sample({"user": torch.tensor([1, 2])})
    with torch.no_grad():
        full, trimmed = embed_both(lp, sub, x, mask)
    assert trimmed["user"].shape == (2, 16) and trimmed["item"].shape == (0, 16)
    torch.testing.assert_close(trimmed["user"], full["user"])


def test_more_hops_than_layers_is_refused():
    edges, x, mask = graph()
    lp = model("sage", 1).eval()
    with pytest.raises(InputError, match="beyond 1 hops"):
        embed_both(lp, sample(edges, [3, 2]), x, mask)


def test_layer_rows_and_trim_csr():
    assert layer_rows({"a": [2, 3, 4]}, 2, 0, {"a": 9, "b": 5}) == ({"a": 9, "b": 5}, {"a": 5, "b": 5})
    assert layer_rows({"a": [2, 3, 4]}, 2, 1, {"a": 9}) == ({"a": 5}, {"a": 2})
    with pytest.raises(InputError, match="counts 9 nodes"):
        layer_rows({"a": [2, 3, 4]}, 2, 0, {"a": 8})
    csr = to_csr(torch.tensor([[0, 1, 2, 3], [0, 0, 1, 2]]), 4, 3, transpose=False)
    kept = trim_csr(csr, 3, 2, transpose=True)
    assert (kept.num_dst, kept.num_src, kept.num_edges) == (2, 3, 3)
    assert kept.transpose is not None and kept.transpose.num_dst == 3
    padded = trim_csr(csr, 3, 1, 3)
    assert padded.num_dst == 3 and padded.deg.tolist() == [2, 0, 0] and padded.ptr.tolist() == [0, 2, 2, 2]
