"""ModelConfig, GraphSchema and the name resolver."""
from __future__ import annotations

import dataclasses
import json
import re

import pytest
from tiny_graph import one_thread  # noqa: F401 (autouse fixture)
from tiny_graph import MESSAGE_EDGE_TYPES, RELATIONS, tiny_graph

from mmgraph.errors import InputError
from mmgraph.models import GraphSchema, ModelConfig
from mmgraph.models import registry
from mmgraph.nn import AttentionFusion, MeanFusion, RotatEScorer


def test_defaults_are_the_documented_ones():
    c = ModelConfig()
    expected = {"channels": 128, "num_layers": 2, "conv": "sage", "fusion": "attention", "variational": True,
                "kl_weight": 1e-3, "kl_warmup_epochs": 10, "free_bits": 0.0, "scorer": "distmult",
                "dropout": 0.1, "feature_dropout": 0.1, "learned_embeddings": "featureless", "norm": "layer",
                "residual": True}
    assert {k: v for k, v in c.to_dict().items() if k in expected} == expected
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.channels = 3


def test_from_dict_round_trips_and_accepts_yaml_ints_for_floats():
    c = ModelConfig.from_dict({"conv": "hgt", "heads": 4, "kl_weight": 0, "scorer": "rotate"})
    assert c.kl_weight == 0.0 and isinstance(c.kl_weight, float)
    assert ModelConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    assert ModelConfig.from_dict(None) == ModelConfig()


def test_from_dict_rejects_unknown_keys_naming_them_and_the_file():
    with pytest.raises(InputError, match=r"cfg\.yaml: unknown model option\(s\) 'chanels'.*channels"):
        ModelConfig.from_dict({"chanels": 64}, source="cfg.yaml")


@pytest.mark.parametrize("bad, field", [
    ({"channels": "128"}, "channels"), ({"variational": "yes"}, "variational"),
    ({"num_layers": True}, "num_layers"), ({"conv": "gat"}, "conv"), ({"scorer": "tucker"}, "scorer"),
    ({"dropout": 1.5}, "dropout"), ({"channels": 0}, "channels"), ({"distance_norm": 3}, "distance_norm"),
    ({"act": "swish"}, "act"), ({"channels": 30, "fusion_heads": 4}, "fusion_heads"),
    ({"scorer": "complex", "channels": 63, "fusion_heads": 1}, "even"), ({"num_bases": 0}, "num_bases"),
])
def test_bad_values_name_the_field(bad, field):
    with pytest.raises(InputError, match=rf"cfg\.yaml: .*{field}"):
        ModelConfig.from_dict(bad, source="cfg.yaml")


def test_registry_resolves_names_and_lists_choices():
    assert registry.resolve("scorer", "rotate") is RotatEScorer
    with pytest.raises(InputError, match="unknown fusion 'max'; choose one of attention, gated, mean"):
        registry.resolve("fusion", "max")
    attention = registry.make_fusion(ModelConfig(channels=8, fusion_heads=2), {"a": 2})
    assert isinstance(attention, AttentionFusion) and attention.heads == 2
    assert isinstance(registry.make_fusion(ModelConfig(channels=8, fusion="mean"), {"a": 2}), MeanFusion)
    assert registry.conv_options(ModelConfig(conv="rgcn", num_bases=3)) == {"num_bases": 3}
    assert registry.make_scorer(ModelConfig(scorer="transe", distance_norm=2, margin=3.0), 8).p == 2


def test_registry_names_match_the_gnn():
    from mmgraph.nn.hetero_gnn import ACTIVATIONS, CONVS

    assert set(registry.ACTIVATIONS) == set(ACTIVATIONS)
    assert set(registry.CONVS) == set(CONVS)


def test_schema_from_graph_reads_features_counts_and_modalities():
    schema = GraphSchema.from_graph(tiny_graph(), RELATIONS, MESSAGE_EDGE_TYPES)
    assert schema.node_types == ("clip", "image", "word")
    assert schema.feature_dims == {"clip": {"sound": 16, "age": 1}, "image": {"picture": 12}, "word": {}}
    assert schema.feature_modalities["clip"] == {"sound": "audio", "age": "numeric"}
    assert schema.num_nodes == {"clip": 8, "image": 6, "word": 4}
    assert schema.relations == tuple(RELATIONS) and schema.edge_types == tuple(MESSAGE_EDGE_TYPES)
    assert schema.metadata == (["clip", "image", "word"], MESSAGE_EDGE_TYPES)
    assert GraphSchema.from_dict(json.loads(json.dumps(schema.to_dict()))) == schema


def test_schema_without_the_mmgraph_record_finds_masked_features():
    g = tiny_graph()
    del g.mmgraph
    schema = GraphSchema.from_graph(g, RELATIONS, MESSAGE_EDGE_TYPES)
    assert schema.feature_dims == {"clip": {"sound": 16, "age": 1}, "image": {"picture": 12}, "word": {}}


def test_schema_rejects_unknown_types_and_missing_tensors():
    g = tiny_graph()
    with pytest.raises(InputError, match=re.escape("relation clip|hears|song joins node types")):
        GraphSchema.from_graph(g, [("clip", "hears", "song")], MESSAGE_EDGE_TYPES)
    with pytest.raises(InputError, match="edge type"):
        GraphSchema.from_graph(g, [("clip", "says")], MESSAGE_EDGE_TYPES)
    g.mmgraph["features"]["word"] = {"name": {"modality": "text"}}
    with pytest.raises(InputError, match="'word'.*'name'"):
        GraphSchema.from_graph(g, RELATIONS, MESSAGE_EDGE_TYPES)
