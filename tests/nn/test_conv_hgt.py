"""HGTConv: the shared contract, graph properties, and equality with PyG's HGTConv."""
from __future__ import annotations

import pytest
import torch
from _asserts import METADATA, NUM_NODES, HeteroLayerProperties, tiny_hetero_graph
from cases import ModuleContract

from mmgraph.nn import HGTConv


class TestHGTConv(ModuleContract, HeteroLayerProperties):
    module_class = HGTConv

    def make_module(self):
        return HGTConv(8, 8, METADATA, heads=2)

    def make_inputs(self):
        return tiny_hetero_graph(8)

    def expected_shapes(self, inputs):
        return {t: (n, 8) for t, n in NUM_NODES.items()}


class TestHGTConvNoSkip(TestHGTConv):
    """in != out: no gated skip; one head."""

    def make_module(self):
        return HGTConv(8, 6, METADATA)

    def expected_shapes(self, inputs):
        return {t: (n, 6) for t, n in NUM_NODES.items()}


def _pyg_twin(pyg, ours: HGTConv) -> None:
    """Copy PyG's weights into ours (PyG stacks k_rel/v_rel by head-major type id h * R + r)."""
    num_relations = len(ours.edge_types)
    with torch.no_grad():
        for t in ours.node_types:
            ours.kqv[t].load_state_dict(pyg.kqv_lin.lins[t].state_dict())
            ours.out_lin[t].load_state_dict(pyg.out_lin.lins[t].state_dict())
            if ours.skip is not None:
                ours.skip[t].copy_(pyg.skip[t])
        for r, et in enumerate(ours.edge_types):
            ours.p_rel[r].copy_(pyg.p_rel["__".join(et)][0])
            for h in range(ours.heads):
                ours.k_rel[r, h].copy_(pyg.k_rel.weight[h * num_relations + r])
                ours.v_rel[r, h].copy_(pyg.v_rel.weight[h * num_relations + r])


@pytest.mark.parametrize("in_channels, out_channels, heads", [(8, 8, 2), (8, 12, 3), (6, 4, 1)])
def test_matches_pyg_hgtconv(in_channels, out_channels, heads):
    from torch_geometric.nn import HGTConv as PygHGTConv

    torch.manual_seed(0)
    x_dict, edge_index_dict = tiny_hetero_graph(in_channels)
    pyg = PygHGTConv(in_channels, out_channels, METADATA, heads=heads)
    with torch.no_grad():  # move priors and gates off their initial 1.0
        for p in list(pyg.p_rel.values()) + list(pyg.skip.values()):
            p.uniform_(0.5, 2.0)
    ours = HGTConv(in_channels, out_channels, METADATA, heads=heads)
    _pyg_twin(pyg, ours)
    with torch.no_grad():
        expected = pyg(x_dict, edge_index_dict)
        out = ours(x_dict, edge_index_dict)
    assert "venue" not in expected  # PyG has no output for a type no relation ends at
    for t in ("author", "paper"):
        torch.testing.assert_close(out[t], expected[t], atol=1e-5, rtol=1e-5)


def test_softmax_spans_all_relations_of_a_destination():
    """With every value 1, the mix is 1 wherever a node has edges: the attention weights sum
    to one over all incoming edges of all relations together (paper 1: two authors, a venue)."""
    torch.manual_seed(0)
    conv = HGTConv(8, 4, METADATA).eval()  # in != out: no skip gate
    with torch.no_grad():
        conv.v_rel.copy_(torch.eye(4).expand_as(conv.v_rel))
        for t in conv.node_types:
            conv.kqv[t].weight[8:].zero_()
            conv.kqv[t].bias[8:].fill_(1.0)
            conv.out_lin[t].weight.copy_(torch.eye(4))
            conv.out_lin[t].bias.zero_()
        out = conv(*tiny_hetero_graph(8))
    gelu_one = torch.nn.functional.gelu(torch.tensor(1.0))
    torch.testing.assert_close(out["paper"], torch.full((4, 4), gelu_one.item()))
    torch.testing.assert_close(out["author"][:2], torch.full((2, 4), gelu_one.item()))
    assert out["author"][2].abs().sum() == 0  # author 2 wrote nothing: no messages


def test_type_without_incoming_relations_uses_its_own_value():
    torch.manual_seed(0)
    conv = HGTConv(8, 6, METADATA, heads=2).eval()
    x_dict, edge_index_dict = tiny_hetero_graph(8)
    with torch.no_grad():
        out = conv(x_dict, edge_index_dict)["venue"]
        value = conv.kqv["venue"](x_dict["venue"])[:, 12:]
        torch.testing.assert_close(out, conv.out_lin["venue"](torch.nn.functional.gelu(value)))


def test_heads_must_divide_out_channels():
    with pytest.raises(ValueError, match="divisible by heads"):
        HGTConv(8, 6, METADATA, heads=4)
