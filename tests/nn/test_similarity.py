"""FeatureSimilarity on tiny tensors, and a LinkPredictor that adds it beside its scorer."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from cases import ModuleContract
from mmgraph.models import GraphSchema, LinkPredictor, ModelConfig
from mmgraph.nn.similarity import FeatureSimilarity

LINK = ("entity", "link", "entity")


class TestFeatureSimilarityContract(ModuleContract):
    module_class = FeatureSimilarity

    def make_module(self):
        module = FeatureSimilarity(num_relations=2)
        module.weights[1] = 2.0   # fitted after training; 0 would cut the inputs' gradient
        return module

    def make_inputs(self):
        return torch.randn(3, 6), torch.randn(5, 6)

    def call(self, module, inputs):
        return module.against_all(1, *inputs)

    def expected_shapes(self, inputs):
        return (3, 5)


def test_weighted_cosine_with_the_node_itself_left_out():
    sim = FeatureSimilarity(num_relations=2)
    x = {"a": torch.randn(5, 4), "b": torch.randn(5, 3)}
    mask = {"a": torch.tensor([True, True, True, True, False]), "b": torch.ones(5, dtype=torch.bool)}
    unit = sim.unit_features(x, mask)
    expected = F.normalize(torch.cat([F.normalize(x["a"], dim=-1) * mask["a"][:, None].float(),
                                      F.normalize(x["b"], dim=-1)], -1), dim=-1)
    assert torch.allclose(unit, expected)
    assert torch.equal(sim.against_all(1, unit[:2], unit), torch.zeros(2, 5))   # weights start at 0
    sim.weights[1] = 3.0
    scores = sim.against_all(1, unit[:2], unit)
    cos = unit[:2] @ unit.T
    assert scores[0, 0] == 0 and scores[1, 1] == 0                             # the node itself
    assert torch.allclose(scores[0, 1:], 3.0 * cos[0, 1:]) and torch.allclose(scores[1, 2:], 3.0 * cos[1, 2:])
    assert torch.allclose(sim.pairs(1, unit[:2], unit[2:4]), 3.0 * (unit[:2] * unit[2:4]).sum(-1))
    assert torch.equal(sim.pairs(0, unit, unit), torch.zeros(5))


def _model() -> LinkPredictor:
    schema = GraphSchema(("entity",), (LINK,), (LINK,), {"entity": {"gloss": 6}}, {"entity": {"gloss": "text"}},
                         {"entity": 7})
    return LinkPredictor(ModelConfig(channels=4, num_layers=0, scorer="complex", variational=False,
                                     linear_head=False, learned_embeddings="all", feature_input=False,
                                     feature_similarity=True), schema)


def test_link_predictor_adds_the_term_in_eval_mode_only():
    torch.manual_seed(0)
    model = _model()
    x = {"entity": {"gloss": torch.randn(7, 6)}}
    m = {"entity": {"gloss": torch.ones(7, dtype=torch.bool)}}
    assert model.projection.slot_names["entity"] == ["<learned>"]       # features are not inputs
    model.train()
    assert model.embed(x, m, {})[0]["entity"].shape == (7, 4)            # training sees the embeddings alone
    model.eval()
    z = model.embed(x, m, {})[0]["entity"]
    assert z.shape == (7, 4 + 6)
    base = model.scorer.score_tails(z[:3, :4], model.relation_vector(LINK, 3), z[:, :4])
    assert torch.equal(model.score_tails(LINK, z[:3], z), base)          # weight 0: the scorer alone
    model.similarity.weights[0] = 2.0
    term = model.similarity.against_all(0, z[:3, 4:], z[:, 4:])
    assert torch.allclose(model.score_tails(LINK, z[:3], z), base + term)
    heads = model.score_heads(LINK, z, z[:3])
    assert torch.allclose(heads, model.scorer.score_heads(z[:, :4], model.relation_vector(LINK, 3), z[:3, :4]) + term)
    pairs = model.score(LINK, z[:3], z[3:6])
    assert torch.allclose(pairs, base[torch.arange(3), torch.arange(3, 6)] + model.similarity.pairs(0, z[:3, 4:], z[3:6, 4:]))
    assert torch.equal(model.score_tails(LINK, z[:3, :4], z[:, :4]), base)   # embeddings without features
