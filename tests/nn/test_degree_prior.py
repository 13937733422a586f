"""DegreePrior on tiny tensors, and a LinkPredictor that adds it beside its scorer."""
from __future__ import annotations

import math

import torch

from cases import ModuleContract
from mmgraph.models import GraphSchema, LinkPredictor, ModelConfig
from mmgraph.nn.degree_prior import DegreePrior

LINK = ("entity", "link", "entity")
OWNS = ("user", "owns", "entity")


class TestDegreePriorContract(ModuleContract):
    module_class = DegreePrior

    def make_module(self):
        module = DegreePrior([LINK], {"entity": 5})
        module.weights[0] = 0.5   # fitted after training; 0 would cut the inputs' gradient
        return module

    def make_inputs(self):
        return torch.randn(3, 2), torch.randn(5, 2)

    def call(self, module, inputs):
        return module.tails(0, *inputs)

    def expected_shapes(self, inputs):
        return (3, 5)


def test_log_degrees_per_relation_and_end_from_the_training_edges():
    prior = DegreePrior([LINK, OWNS], {"entity": 4, "user": 2})
    prior.set_degrees_({LINK: torch.tensor([[0, 0, 1], [2, 3, 2]]), OWNS: torch.tensor([[1, 1], [0, 2]])})
    ent = prior.rows("entity", 4)
    # columns: out-degree under link, under owns; in-degree under link, under owns
    assert torch.allclose(ent, torch.log1p(torch.tensor([[2., 0, 0, 1], [1, 0, 0, 0], [0, 0, 2, 1], [0, 0, 1, 0]])))
    assert torch.allclose(prior.rows("user", 2), torch.log1p(torch.tensor([[0., 0, 0, 0], [0, 2, 0, 0]])))
    # chosen rows, and nodes added after training (id 4, 5) have no training edges
    picked = prior.rows("entity", 3, torch.tensor([2, 4, 5]))
    assert torch.equal(picked[0], ent[2]) and torch.equal(picked[1:], torch.zeros(2, 4))
    assert torch.equal(prior.rows("entity", 6)[4:], torch.zeros(2, 4))


def test_a_pair_scores_as_its_entry_in_either_ranking():
    prior = DegreePrior([LINK], {"entity": 5})
    prior.set_degrees_({LINK: torch.tensor([[0, 0, 1, 3], [2, 3, 2, 2]])})
    cols = prior.rows("entity", 5)
    assert torch.equal(prior.tails(0, cols[:2], cols), torch.zeros(2, 5))    # weights start at 0
    prior.weights[0] = 0.5
    tails, heads = prior.tails(0, cols[:2], cols), prior.heads(0, cols, cols[:2])
    for q in range(2):
        for v in range(5):
            assert tails[q, v] == prior.pairs(0, cols[q:q + 1], cols[v:v + 1])[0]
            assert heads[q, v] == prior.pairs(0, cols[v:v + 1], cols[q:q + 1])[0]
    assert tails[0, 2] == 0.5 * (math.log(3) + math.log(4))   # node 0: 2 out-edges; node 2: 3 in-edges


def _model(**options) -> LinkPredictor:
    schema = GraphSchema(("entity",), (LINK,), (LINK,), {"entity": {"gloss": 6}}, {"entity": {"gloss": "text"}},
                         {"entity": 7})
    return LinkPredictor(ModelConfig(channels=4, num_layers=0, scorer="complex", variational=False,
                                     linear_head=False, learned_embeddings="all", degree_prior=True, **options),
                         schema)


def test_link_predictor_adds_the_prior_in_eval_mode_only():
    torch.manual_seed(0)
    model = _model()
    model.degree_prior.set_degrees_({LINK: torch.tensor([[0, 1, 1, 5], [2, 2, 3, 2]])})
    x = {"entity": {"gloss": torch.randn(7, 6)}}
    m = {"entity": {"gloss": torch.ones(7, dtype=torch.bool)}}
    model.train()
    assert model.embed(x, m, {})[0]["entity"].shape == (7, 4)            # training sees the embeddings alone
    model.eval()
    z = model.embed(x, m, {})[0]["entity"]
    assert z.shape == (7, 4 + 2) and torch.equal(z[:, 4:], model.degree_prior.rows("entity", 7))
    base = model.scorer.score_tails(z[:3, :4], model.relation_vector(LINK, 3), z[:, :4])
    assert torch.equal(model.score_tails(LINK, z[:3], z), base)          # weight 0: the scorer alone
    model.degree_prior.weights[0] = 2.0
    term = model.degree_prior.tails(0, z[:3, 4:], z[:, 4:])
    assert torch.allclose(model.score_tails(LINK, z[:3], z), base + term)
    heads = model.score_heads(LINK, z, z[:3])
    assert torch.allclose(heads, model.scorer.score_heads(z[:, :4], model.relation_vector(LINK, 3), z[:3, :4])
                          + model.degree_prior.heads(0, z[:, 4:], z[:3, 4:]))
    assert torch.allclose(model.score(LINK, z[:3], z[3:6]), model.score_tails(LINK, z[:3], z)[:, 3:6].diagonal())


def test_prior_and_similarity_together_keep_pairs_and_rankings_in_agreement():
    torch.manual_seed(1)
    model = _model(feature_similarity=True).eval()
    model.degree_prior.set_degrees_({LINK: torch.tensor([[0, 1, 1, 5], [2, 2, 3, 2]])})
    x = {"entity": {"gloss": torch.randn(7, 6)}}
    m = {"entity": {"gloss": torch.ones(7, dtype=torch.bool)}}
    z = model.embed(x, m, {})[0]["entity"]
    assert z.shape == (7, 4 + 2 + 6)                                     # [embedding | degrees | features]
    model.degree_prior.weights[0], model.similarity.weights[0] = 0.5, 3.0
    tails, heads = model.score_tails(LINK, z[:3], z), model.score_heads(LINK, z, z[:3])
    assert torch.allclose(model.score(LINK, z[:3], z[3:6]), tails[:, 3:6].diagonal())
    assert torch.allclose(model.score(LINK, z[3:6], z[:3]), heads[:, 3:6].diagonal())
    alone = model.scorer.score_tails(z[:3, :4], model.relation_vector(LINK, 3), z[:, :4])
    both = alone + model.degree_prior.tails(0, z[:3, 4:6], z[:, 4:6]) + model.similarity.against_all(0, z[:3, 6:], z[:, 6:])
    assert torch.allclose(tails, both)


def test_each_end_has_its_own_weight_and_a_ranking_reads_only_its_end():
    prior = DegreePrior([LINK], {"entity": 5})
    prior.set_degrees_({LINK: torch.tensor([[0, 0, 1, 3], [2, 3, 2, 2]])})
    cols = prior.rows("entity", 5)
    prior.weights[0] = torch.tensor([0.0, 1.0])                  # the target end only
    tails_b = prior.tails(0, cols[:2], cols)
    prior.weights[0] = torch.tensor([3.0, 1.0])                  # a source weight shifts each tail row
    tails_ab = prior.tails(0, cols[:2], cols)
    shift = tails_ab - tails_b
    assert torch.allclose(shift, shift[:, :1].expand_as(shift))   # the same shift across candidates
    assert torch.allclose(prior.pairs(0, cols[:2], cols[2:4]), tails_ab[[0, 1], [2, 3]])
    heads = prior.heads(0, cols, cols[2:4])
    assert torch.allclose(prior.pairs(0, cols[:2], cols[2:4]), heads[[0, 1], [0, 1]])
    assert torch.allclose(heads[0], 3.0 * cols[:, 0] + 1.0 * cols[2, 1])
