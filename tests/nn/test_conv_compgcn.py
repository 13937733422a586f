"""CompGCNConv: the shared contract, graph properties, and a per-edge reference computation."""
from __future__ import annotations

import pytest
import torch
from _asserts import METADATA, NUM_NODES, HeteroLayerProperties, tiny_hetero_graph
from cases import ModuleContract

from mmgraph.nn import CompGCNConv
from mmgraph.nn.conv.compgcn import compose


class TestCompGCNConv(ModuleContract, HeteroLayerProperties):
    module_class = CompGCNConv

    def make_module(self):
        return CompGCNConv(8, 6, METADATA)

    def make_inputs(self):
        return tiny_hetero_graph(8)

    def expected_shapes(self, inputs):
        return {t: (n, 6) for t, n in NUM_NODES.items()}


class TestCompGCNConvSub(TestCompGCNConv):
    def make_module(self):
        return CompGCNConv(8, 6, METADATA, composition="sub")


class TestCompGCNConvCorr(TestCompGCNConv):
    def make_module(self):
        return CompGCNConv(8, 6, METADATA, composition="corr")


def test_circular_correlation_matches_its_definition():
    x, z = torch.randn(3, 5), torch.randn(5)
    expected = torch.stack([torch.stack([(x[n] * z.roll(-k)).sum() for k in range(5)]) for n in range(3)])
    torch.testing.assert_close(compose(x, z, "corr"), expected, atol=1e-5, rtol=1e-5)


def per_edge_reference(conv: CompGCNConv, x_dict, edge_index_dict):
    """The layer's formula edge by edge: compose every message, then average per relation."""
    out = {}
    for t, x in x_dict.items():
        total = conv.w_loop(compose(x, conv.loop_relation, conv.composition))
        into = [et for et in conv.edge_types if et[2] == t]
        for et in into:
            src, dst = edge_index_dict[et]
            rel = conv.relation[conv.edge_types.index(et)]
            weight = conv.w_inverse if et[1].startswith("rev_") else conv.w_original
            for i in range(x.size(0)):
                sources = src[dst == i]
                if sources.numel():
                    messages = compose(x_dict[et[0]][sources], rel, conv.composition)
                    total[i] = total[i] + weight(messages.mean(0))
        out[t] = total / (len(into) + 1) + conv.bias
    return out


@pytest.mark.parametrize("composition", ["sub", "mult", "corr"])
def test_matches_per_edge_reference(composition):
    torch.manual_seed(0)
    conv = CompGCNConv(8, 6, METADATA, composition=composition)
    with torch.no_grad():
        conv.bias.normal_()
    x_dict, edge_index_dict = tiny_hetero_graph(8)
    with torch.no_grad():
        out = conv(x_dict, edge_index_dict)
        expected = per_edge_reference(conv, x_dict, edge_index_dict)
    for t in NUM_NODES:
        torch.testing.assert_close(out[t], expected[t], atol=1e-5, rtol=1e-5)


def test_reverse_prefix_picks_the_inverse_weight():
    torch.manual_seed(0)
    conv = CompGCNConv(8, 6, METADATA, reverse_prefix="rev_")
    x_dict, edge_index_dict = tiny_hetero_graph(8)
    conv(x_dict, edge_index_dict)["author"].sum().backward()
    # authors only hear from rev_writes: the original-direction weight is unused
    assert conv.w_inverse.weight.grad.abs().sum() > 0
    assert conv.w_original.weight.grad is None


def test_rejects_unknown_composition():
    with pytest.raises(ValueError, match="composition must be"):
        CompGCNConv(8, 6, METADATA, composition="add")
