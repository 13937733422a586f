"""RGCNConv: the shared contract, graph properties, and equality with PyG's RGCNConv."""
from __future__ import annotations

import pytest
import torch
from _asserts import METADATA, NUM_NODES, HeteroLayerProperties, tiny_hetero_graph
from cases import ModuleContract

from mmgraph.nn import RGCNConv


class TestRGCNConv(ModuleContract, HeteroLayerProperties):
    module_class = RGCNConv

    def make_module(self):
        return RGCNConv(8, 6, METADATA, num_bases=2)

    def make_inputs(self):
        return tiny_hetero_graph(8)

    def expected_shapes(self, inputs):
        return {t: (n, 6) for t, n in NUM_NODES.items()}


class TestRGCNConvFullWeights(TestRGCNConv):
    """No basis decomposition, out > in (aggregate first), no bias."""

    def make_module(self):
        return RGCNConv(8, 12, METADATA, bias=False)

    def expected_shapes(self, inputs):
        return {t: (n, 12) for t, n in NUM_NODES.items()}


def _homogeneous(x_dict, edge_index_dict, edge_types):
    """Concatenate node types in metadata order; relation id = position of the edge type."""
    offset, start = {}, 0
    for t in METADATA[0]:
        offset[t] = start
        start += x_dict[t].size(0)
    x = torch.cat([x_dict[t] for t in METADATA[0]])
    edge_index = torch.cat([edge_index_dict[et] + torch.tensor([[offset[et[0]]], [offset[et[2]]]])
                            for et in edge_types], dim=1)
    edge_type = torch.cat([torch.full((edge_index_dict[et].size(1),), r) for r, et in enumerate(edge_types)])
    return x, edge_index, edge_type, offset


@pytest.mark.parametrize("out_channels, num_bases", [(6, 2), (12, 2), (6, None)])
def test_matches_pyg_rgcnconv_on_the_homogeneous_view(out_channels, num_bases):
    from torch_geometric.nn import RGCNConv as PygRGCNConv

    torch.manual_seed(0)
    x_dict, edge_index_dict = tiny_hetero_graph(8)
    edge_types = METADATA[1]
    pyg = PygRGCNConv(8, out_channels, num_relations=len(edge_types), num_bases=num_bases, aggr="mean")
    ours = RGCNConv(8, out_channels, METADATA, num_bases=num_bases)
    with torch.no_grad():
        pyg.bias.normal_()
        ours.weight.copy_(pyg.weight)
        if num_bases is not None:
            ours.comp.copy_(pyg.comp)
        for t in METADATA[0]:  # PyG has one root weight: give every node type the same one
            ours.root[t].weight.copy_(pyg.root.t())
            ours.root[t].bias.copy_(pyg.bias)
        x, edge_index, edge_type, offset = _homogeneous(x_dict, edge_index_dict, edge_types)
        expected = pyg(x, edge_index, edge_type)
        out = ours(x_dict, edge_index_dict)
    for t, n in NUM_NODES.items():
        torch.testing.assert_close(out[t], expected[offset[t]:offset[t] + n], atol=1e-5, rtol=1e-5)


def test_bases_compose_the_relation_weights():
    conv = RGCNConv(4, 3, METADATA, num_bases=2)
    weights = conv.relation_weights()
    assert weights.shape == (3, 4, 3)
    expected = conv.comp[1, 0] * conv.weight[0] + conv.comp[1, 1] * conv.weight[1]
    torch.testing.assert_close(weights[1], expected)


def test_rejects_bad_num_bases():
    with pytest.raises(ValueError, match="num_bases"):
        RGCNConv(4, 3, METADATA, num_bases=0)
