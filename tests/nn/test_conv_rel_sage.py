"""RelSAGEConv: the shared contract, graph properties, and equality with PyG's HeteroConv(SAGEConv)."""
from __future__ import annotations

import pytest
import torch
from _asserts import METADATA, NUM_NODES, HeteroLayerProperties, tiny_hetero_graph
from cases import ModuleContract

from mmgraph.nn import RelSAGEConv


class TestRelSAGEConv(ModuleContract, HeteroLayerProperties):
    module_class = RelSAGEConv

    def make_module(self):
        return RelSAGEConv(8, 6, METADATA)

    def make_inputs(self):
        return tiny_hetero_graph(8)

    def expected_shapes(self, inputs):
        return {t: (n, 6) for t, n in NUM_NODES.items()}


class TestRelSAGEConvMaxWide(TestRelSAGEConv):
    """Max aggregation, aggregate-then-transform (out > in), L2-normalised rows."""

    def make_module(self):
        return RelSAGEConv(8, 12, METADATA, aggr="max", normalize=True)

    def expected_shapes(self, inputs):
        return {t: (n, 12) for t, n in NUM_NODES.items()}


@pytest.mark.parametrize("out_channels", [6, 12])  # transform-first and aggregate-first paths
def test_matches_pyg_heteroconv_of_sageconv(out_channels):
    from torch_geometric.nn import HeteroConv, SAGEConv

    torch.manual_seed(0)
    x_dict, edge_index_dict = tiny_hetero_graph(8)
    node_types, edge_types = METADATA
    pyg = HeteroConv({et: SAGEConv((-1, -1), out_channels) for et in edge_types}, aggr="sum")
    pyg(x_dict, edge_index_dict)  # materialise the lazy weights
    ours = RelSAGEConv(8, out_channels, METADATA)
    with torch.no_grad():
        for et in edge_types:
            pyg.convs[et].lin_l.bias.normal_()
            ours.lin_rel[et].weight.copy_(pyg.convs[et].lin_l.weight)
        for t in node_types:
            into = [pyg.convs[et] for et in edge_types if et[2] == t]
            if into:  # PyG's per-relation root weights and biases add up
                ours.lin_root[t].weight.copy_(sum(c.lin_r.weight for c in into))
                ours.lin_root[t].bias.copy_(sum(c.lin_l.bias for c in into))
        expected = pyg(x_dict, edge_index_dict)
    out = ours(x_dict, edge_index_dict)
    assert set(expected) == {"author", "paper"}  # PyG drops "venue": no relation ends there
    assert set(out) == set(NUM_NODES)
    for t in expected:
        torch.testing.assert_close(out[t], expected[t], atol=1e-5, rtol=1e-5)


def test_node_type_without_incoming_edges_keeps_its_root_transform():
    conv = RelSAGEConv(8, 6, METADATA)
    x_dict, edge_index_dict = tiny_hetero_graph(8)
    out = conv(x_dict, edge_index_dict)
    torch.testing.assert_close(out["venue"], conv.lin_root["venue"](x_dict["venue"]))


def test_rejects_unknown_aggregation():
    with pytest.raises(ValueError, match="aggr must be"):
        RelSAGEConv(8, 6, METADATA, aggr="median")
