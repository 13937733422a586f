"""HeteroGNN: the shared contract per conv, residual/norm/dropout wiring, no implicit reverse edges."""
from __future__ import annotations

import pytest
import torch
from _asserts import METADATA, NODE_TYPES, NUM_NODES, WRITES, HeteroLayerProperties, tiny_hetero_graph
from cases import ModuleContract

from mmgraph.nn import HeteroGNN, RelSAGEConv


class TestHeteroGNN(ModuleContract, HeteroLayerProperties):
    module_class = HeteroGNN

    def make_module(self):
        return HeteroGNN(8, METADATA, num_layers=2, conv="hgt", heads=2, norm="layer")

    def make_inputs(self):
        return tiny_hetero_graph(8)

    def expected_shapes(self, inputs):
        return {t: (n, 8) for t, n in NUM_NODES.items()}


class TestHeteroGNNSageBatchNorm(TestHeteroGNN):
    def make_module(self):
        return HeteroGNN(8, METADATA, num_layers=3, conv="sage", norm="batch", act="relu")


class TestHeteroGNNRGCN(TestHeteroGNN):
    def make_module(self):
        return HeteroGNN(8, METADATA, conv="rgcn", num_bases=2, residual=False)


class TestHeteroGNNCompGCN(TestHeteroGNN):
    def make_module(self):
        return HeteroGNN(8, METADATA, conv="compgcn", composition="corr", norm="none")


def test_layers_are_stacked_with_norm_act_and_residual():
    torch.manual_seed(0)
    gnn = HeteroGNN(8, METADATA, num_layers=2, conv="sage", norm="layer", act="relu").eval()
    x_dict, edge_index_dict = tiny_hetero_graph(8)
    with torch.no_grad():
        h = gnn.convs[0](x_dict, edge_index_dict)
        x1 = {t: x_dict[t] + torch.relu(gnn.norms[0][t](h[t])) for t in x_dict}
        h = gnn.convs[1](x1, edge_index_dict)
        expected = {t: x1[t] + h[t] for t in x_dict}  # the last layer is linear
        out = gnn(x_dict, edge_index_dict)
    assert len(gnn.norms) == 1 and set(gnn.norms[0].keys()) == set(NODE_TYPES)
    for t in out:
        torch.testing.assert_close(out[t], expected[t])


def test_dropout_acts_in_training_only():
    torch.manual_seed(0)
    gnn = HeteroGNN(8, METADATA, conv="sage", dropout=0.5)
    x_dict, edge_index_dict = tiny_hetero_graph(8)
    a, b = gnn(x_dict, edge_index_dict), gnn(x_dict, edge_index_dict)
    assert any(not torch.equal(a[t], b[t]) for t in a)
    gnn.eval()
    a, b = gnn(x_dict, edge_index_dict), gnn(x_dict, edge_index_dict)
    assert all(torch.equal(a[t], b[t]) for t in a)


def test_reverse_edges_are_never_added():
    """With only author->paper in the metadata, authors hear nothing from papers."""
    torch.manual_seed(0)
    gnn = HeteroGNN(8, (NODE_TYPES, [WRITES]), conv="sage").eval()
    x_dict, edge_index_dict = tiny_hetero_graph(8)
    changed = {**x_dict, "paper": torch.randn_like(x_dict["paper"])}
    with torch.no_grad():
        a = gnn(x_dict, {WRITES: edge_index_dict[WRITES]})
        b = gnn(changed, {WRITES: edge_index_dict[WRITES]})
    torch.testing.assert_close(a["author"], b["author"])
    assert not torch.allclose(a["paper"], b["paper"])


def test_accepts_a_conv_class():
    gnn = HeteroGNN(8, METADATA, conv=RelSAGEConv, aggr="sum")
    assert all(isinstance(c, RelSAGEConv) and c.aggr == "sum" for c in gnn.convs)
    assert "RelSAGEConv" in repr(gnn)


@pytest.mark.parametrize("options, message", [
    ({"conv": "gat"}, "conv must be one of"),
    ({"norm": "group"}, "norm must be"),
    ({"act": "swish"}, "act must be one of"),
    ({"num_layers": 0}, "num_layers must be"),
    ({"dropout": 1.0}, "dropout must be"),
])
def test_rejects_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        HeteroGNN(8, METADATA, **options)
