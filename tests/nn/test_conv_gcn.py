"""GCNConv: the shared contract, graph properties, and equality with PyG's GCNConv."""
from __future__ import annotations

import torch
from _asserts import METADATA, NUM_NODES, HeteroLayerProperties, tiny_hetero_graph
from cases import ModuleContract

from mmgraph.nn import GCNConv

PAPER = (["paper"], [("paper", "cites", "paper"), ("paper", "rev_cites", "paper")])


class TestGCNConv(ModuleContract, HeteroLayerProperties):
    module_class = GCNConv

    def make_module(self):
        return GCNConv(8, 6, METADATA)

    def make_inputs(self):
        return tiny_hetero_graph(8)

    def expected_shapes(self, inputs):
        return {t: (n, 6) for t, n in NUM_NODES.items()}


def _citations(num_nodes=7, num_edges=12, seed=0):
    gen = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, num_nodes, (2, num_edges), generator=gen)
    ei = ei[:, ei[0] != ei[1]]  # PyG adds one self-loop per node; no others to confuse the count
    return torch.randn(num_nodes, 8, generator=gen), ei


def test_matches_pyg_gcnconv_on_a_homogeneous_graph():
    from torch_geometric.nn import GCNConv as PyGGCNConv

    x, ei = _citations()
    pyg = PyGGCNConv(8, 5)
    ours = GCNConv(8, 5, PAPER)
    with torch.no_grad():
        pyg.bias.normal_()
        ours.lin_self["paper"].weight.copy_(pyg.lin.weight)
        ours.bias["paper"].copy_(pyg.bias)
    # PyG sees both directions in one edge_index; ours as two relations of the same node type
    expected = pyg(x, torch.cat([ei, ei.flip(0)], dim=1))
    out = ours({"paper": x}, {PAPER[1][0]: ei, PAPER[1][1]: ei.flip(0)})
    torch.testing.assert_close(out["paper"], expected, atol=1e-5, rtol=1e-5)


def test_directed_graph_uses_in_degrees_like_pyg():
    from torch_geometric.nn import GCNConv as PyGGCNConv

    x, ei = _citations(seed=3)
    meta = (["paper"], [("paper", "cites", "paper")])
    pyg, ours = PyGGCNConv(8, 4), GCNConv(8, 4, meta)
    with torch.no_grad():
        ours.lin_self["paper"].weight.copy_(pyg.lin.weight)
    torch.testing.assert_close(ours({"paper": x}, {meta[1][0]: ei})["paper"], pyg(x, ei), atol=1e-5, rtol=1e-5)


def test_isolated_node_keeps_its_own_transform():
    conv = GCNConv(8, 6, PAPER)
    x = torch.randn(3, 8)
    ei = torch.tensor([[0], [1]])
    out = conv({"paper": x}, {PAPER[1][0]: ei, PAPER[1][1]: ei.flip(0)})
    torch.testing.assert_close(out["paper"][2], conv.lin_self["paper"](x[2]) + conv.bias["paper"])


def test_cross_type_relation_is_bipartite_normalised():
    conv = GCNConv(8, 6, METADATA, bias=False)
    x_dict, edge_index_dict = tiny_hetero_graph(8)
    hosts = ("venue", "hosts", "paper")
    only_hosts = conv(x_dict, {hosts: edge_index_dict[hosts]})
    # every venue hosts 2 papers and every paper has one venue: weight 1 / sqrt(1 * 2)
    expected = conv.lin_self["paper"](x_dict["paper"]) + conv.lin_rel[hosts](x_dict["venue"])[[0, 0, 1, 1]] / 2 ** 0.5
    torch.testing.assert_close(only_hosts["paper"], expected)
