"""Parameters stored by name: escaping, and every per-type / per-relation module with dotted names."""
from __future__ import annotations

import pytest
import torch
from cases import one_thread  # noqa: F401 (autouse fixture)
from torch import nn

from mmgraph.nn import AttentionFusion, FeatureProjection, GatedFusion, HeteroGNN, MeanFusion, VariationalHead
from mmgraph.nn.named import NamedModuleDict, NamedParameterDict, param_key, parameter_names

PLAIN = (["user", "item"], [("user", "rates", "item"), ("item", "rev_rates", "user"), ("item", "like", "item")])
# The same graph with dots (and other characters torch refuses or parses) in every name.
DOTTED = (["user.v1", "item"], [("user.v1", "rates.5star", "item"), ("item", "rev_rates.5star", "user.v1"),
                                ("item", "like.a|b", "item")])
RENAME = dict(zip(PLAIN[0], DOTTED[0])) | dict(zip(PLAIN[1], DOTTED[1]))


def test_param_key_is_valid_and_injective():
    names = ["a.b", "a#b", "a%2Eb", "a%b", "a|b", ("a", "b"), ("a|b", "c"), ("a", "b|c"), "keys", "%%keys",
             "training", "type", "_x", "", "a b", ("a.b", "c.d", "e")]
    keys = [param_key(n) for n in names]
    assert len(set(keys)) == len(keys)
    assert all("." not in k and k for k in keys)
    assert param_key("paper") == "paper" and param_key(("a", "to", "b")) == "a|to|b"  # readable when it can be
    lins = NamedModuleDict({n: nn.Linear(1, 1) for n in names})  # torch accepts every key
    assert lins.keys() == names and ("a", "b") in lins and "nope" not in lins
    params = NamedParameterDict({n: nn.Parameter(torch.zeros(1)) for n in names})
    assert [n for n, _ in params.items()] == names
    with pytest.raises(KeyError):
        lins["nope"]


def _x_dict(types, gen):
    return {t: torch.randn(n, 8, generator=gen) for t, n in zip(types, (4, 5))}


def _edges(edge_types):
    ei = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])
    index = {"rates": ei, "rev_rates": ei.flip(0), "like": torch.tensor([[0, 1, 4], [1, 2, 0]])}
    return {et: index[p[1]] for et, p in zip(edge_types, PLAIN[1])}


@pytest.mark.parametrize("conv,options", [("sage", {}), ("rgcn", {}), ("rgcn", {"num_bases": 2}),
                                          ("hgt", {"heads": 2}), ("compgcn", {}), ("gcn", {})])
def test_every_conv_takes_dotted_type_and_relation_names(conv, options):
    outputs, states = [], []
    for node_types, edge_types in (PLAIN, DOTTED):
        torch.manual_seed(0)
        gnn = HeteroGNN(8, (node_types, edge_types), num_layers=2, conv=conv, **options)
        out = gnn(_x_dict(node_types, torch.Generator().manual_seed(1)), _edges(edge_types))
        outputs.append(out)
        states.append(gnn)
    (plain, dotted), dotted_gnn = outputs, states[1]
    # the names change nothing but the names: same parameters, same outputs
    for t, x in plain.items():
        torch.testing.assert_close(dotted[RENAME[t]], x)
    sum(v.sum() for v in dotted.values()).backward()
    assert all(p.grad is not None for p in dotted_gnn.parameters())
    # a state_dict round trip into a freshly built model with the dotted names
    fresh = HeteroGNN(8, DOTTED, num_layers=2, conv=conv, **options)
    fresh.load_state_dict(dotted_gnn.state_dict())
    again = fresh(_x_dict(DOTTED[0], torch.Generator().manual_seed(1)), _edges(DOTTED[1]))
    for t, x in dotted.items():
        torch.testing.assert_close(again[t], x)


def test_projection_fusion_and_head_take_dotted_names():
    dims = {"user.v1": {"photo.small": 6, "bio": 4}, "item": {}}
    proj = FeatureProjection(dims, 8, num_nodes={"item": 5}, learned_types=())
    x = {"user.v1": {"photo.small": torch.randn(3, 6), "bio": torch.randn(3, 4)}, "item": {}}
    mask = {"user.v1": {"photo.small": torch.tensor([True, False, True]), "bio": torch.ones(3, dtype=torch.bool)},
            "item": {}}
    tokens, slot_mask = proj(x, mask)
    assert tokens["user.v1"].shape == (3, 2, 8) and tokens["item"].shape == (5, 1, 8)
    assert ("user.v1", "photo.small") in proj.lins and "item" in proj.embeddings
    for fusion in (MeanFusion(8, proj.slot_names), GatedFusion(8, proj.slot_names),
                   AttentionFusion(8, proj.slot_names, heads=2)):
        fused = fusion(tokens, slot_mask)
        assert fused["user.v1"].shape == (3, 8) and fused["item"].shape == (5, 8)
    head = VariationalHead(8, 4, list(dims))
    z, mu, logvar = head(fused)
    assert z["user.v1"].shape == (3, 4) and "user.v1" in head.lin_mu


def test_parameter_names_give_every_entry_and_row_its_name():
    torch.manual_seed(0)
    gnn = HeteroGNN(8, DOTTED, num_layers=1, conv="hgt", heads=2)
    names = parameter_names(gnn)
    assert set(names) == set(gnn.state_dict())
    lin = "convs.0.kqv.user%2Ev1.weight"
    assert names[lin] == ("convs.0.kqv", "user.v1", "weight")
    assert names["convs.0.k_rel"] == [("convs.0", "k_rel", et) for et in DOTTED[1]]
    assert names["convs.0.skip.item"] == ("convs.0.skip", "item", "")
    fusion = GatedFusion(8, {"user.v1": ["photo.small", "bio"]})
    assert parameter_names(fusion)["missing.user%2Ev1"] == [("missing", "user.v1", "photo.small"),
                                                             ("missing", "user.v1", "bio")]
    assert parameter_names(fusion)["gate.weight"] == ("", None, "gate.weight")
