"""Fine-tuning's parameter matching on tiny schemas: which entries load, which are new, which are skipped."""
from __future__ import annotations

import pytest
import torch

from mmgraph.models import GraphSchema, LinkPredictor, ModelConfig
from mmgraph.models.transfer import parameter_identities, transfer_weights
from mmgraph.train.freeze import FreezeSchedule

SAYS, SHOWS = ("clip", "says", "word"), ("image", "shows", "word")


def schema(types: dict[str, dict[str, tuple[str, int]]], relations, nodes: int = 4) -> GraphSchema:
    """Node types {type: {feature: (modality, dim)}}; message edges: the relations and their reverses."""
    edges = [*relations, *[(d, "rev_" + r, s) for s, r, d in relations]]
    return GraphSchema(tuple(types), tuple(edges), tuple(relations),
                       {t: {f: d for f, (_, d) in fs.items()} for t, fs in types.items()},
                       {t: {f: m for f, (m, _) in fs.items()} for t, fs in types.items()},
                       {t: nodes for t in types})


def model(types, relations, **options) -> LinkPredictor:
    return LinkPredictor(ModelConfig(channels=8, fusion_heads=2, **options), schema(types, relations))


AUDIO_TEXT = {"clip": {"sound": ("audio", 12)}, "word": {"name": ("text", 10)}}


def test_the_same_schema_loads_everything():
    torch.manual_seed(0)
    source = model(AUDIO_TEXT, [SAYS])
    torch.manual_seed(1)
    target = model(AUDIO_TEXT, [SAYS])
    report = transfer_weights(target, source)
    assert not report.new and not report.skipped and not report.transferred
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key


def test_a_new_node_type_with_a_new_modality_is_initialised_and_old_modules_load():
    source = model(AUDIO_TEXT, [SAYS])
    target = model({**AUDIO_TEXT, "image": {"picture": ("image", 16)}}, [SAYS, SHOWS])
    before = {k: v.clone() for k, v in target.state_dict().items()}
    report = transfer_weights(target, source)
    ids = parameter_identities(target)
    sound = next(k for k, i in ids.items() if i == ("projection.lins", ("clip", "sound"), "weight"))
    picture = next(k for k, i in ids.items() if i == ("projection.lins", ("image", "picture"), "weight"))
    assert sound in report.loaded and picture in report.new
    assert torch.equal(target.state_dict()[sound], source.state_dict()["projection.lins.clip|sound.weight"])
    assert torch.equal(target.state_dict()[picture], before[picture])
    # relation vectors are stacked: the says row loads, the shows row is new
    assert "relation_vectors[clip|says|word]" in report.loaded
    assert "relation_vectors[image|shows|word]" in report.new
    mask = report.loaded_masks["relation_vectors"]
    assert mask[0].all() and not mask[1].any()
    # per-edge-type GNN modules: says loads by name, shows is new
    assert any(".lin_rel.clip|says|word." in k for k in report.loaded)
    assert any(".lin_rel.image|shows|word." in k for k in report.new)


def test_a_new_node_type_takes_a_projection_of_the_same_modality_and_size():
    source = model(AUDIO_TEXT, [SAYS])
    target = model({"voice": {"sound": ("audio", 12)}, "word": {"name": ("text", 10)}}, [("voice", "says", "word")])
    report = transfer_weights(target, source)
    ids = parameter_identities(target)
    voice = next(k for k, i in ids.items() if i == ("projection.lins", ("voice", "sound"), "weight"))
    assert voice in report.transferred
    assert torch.equal(target.state_dict()[voice], source.state_dict()["projection.lins.clip|sound.weight"])


def test_shape_mismatch_is_skipped_not_loaded():
    source = model(AUDIO_TEXT, [SAYS])
    target = model({"clip": {"sound": ("audio", 12)}, "word": {"name": ("text", 6)}}, [SAYS])
    before = {k: v.clone() for k, v in target.state_dict().items()}
    report = transfer_weights(target, source)
    ids = parameter_identities(target)
    name = next(k for k, i in ids.items() if i == ("projection.lins", ("word", "name"), "weight"))
    assert any(s.startswith(name) for s in report.skipped)
    assert torch.equal(target.state_dict()[name], before[name])


@pytest.mark.parametrize("options", [{"conv": "rgcn"}, {"conv": "hgt", "heads": 2}, {"conv": "compgcn"},
                                     {"fusion": "gated", "variational": False}])
def test_every_conv_and_head_maps_rows_by_edge_type(options):
    source = model(AUDIO_TEXT, [SAYS], **options)
    target = model({**AUDIO_TEXT, "image": {"picture": ("image", 16)}}, [SAYS, SHOWS], **options)
    report = transfer_weights(target, source)
    assert report.loaded and report.new and not report.skipped


def test_freeze_keeps_loaded_entries_then_releases_them():
    torch.manual_seed(0)
    source = model(AUDIO_TEXT, [SAYS])
    target = model(AUDIO_TEXT, [SAYS, ("clip", "near", "word")])
    report = transfer_weights(target, source)
    optimizer = torch.optim.Adam(target.parameters(), lr=0.1, weight_decay=0.1)
    freeze = FreezeSchedule(target, report.loaded_masks, epochs=2)
    freeze.attach(optimizer)
    start = target.relation_vectors.detach().clone()

    def step():
        z, _ = target.embed({"clip": {"sound": torch.randn(4, 12)}, "word": {"name": torch.randn(4, 10)}},
                            {"clip": {"sound": torch.ones(4, dtype=torch.bool)},
                             "word": {"name": torch.ones(4, dtype=torch.bool)}}, {})
        loss = target.score(SAYS, z["clip"], z["word"]).sum() + target.score(("clip", "near", "word"), z["clip"],
                                                                             z["word"]).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    target.train()
    for epoch in (1, 2):
        freeze.update(epoch)
        step()
    assert freeze.active
    assert torch.equal(target.relation_vectors[0], start[0])         # loaded row frozen (despite weight decay)
    assert not torch.equal(target.relation_vectors[1], start[1])     # new row trains
    freeze.update(3)
    step()
    assert not freeze.active and not torch.equal(target.relation_vectors[0], start[0])


def test_dotted_names_and_per_slot_rows_match_by_name():
    dotted = ("clip.v1", "says.en", "word")
    source = model({"clip.v1": {"sound.mfcc": ("audio", 12)}, "word": {"name": ("text", 10)}}, [dotted],
                   fusion="gated")
    # the target's clip has a new feature before the old one: rows of per-slot tokens move
    target = model({"clip.v1": {"age": ("numeric", 1), "sound.mfcc": ("audio", 12)}, "word": {"name": ("text", 10)}},
                   [dotted], fusion="gated")
    report = transfer_weights(target, source)
    assert not report.skipped
    assert "fusion.missing.clip%2Ev1[sound.mfcc]" in report.loaded and "fusion.missing.clip%2Ev1[age]" in report.new
    assert torch.equal(target.fusion.missing["clip.v1"][1], source.fusion.missing["clip.v1"][0])
    assert torch.equal(target.fusion.gate_bias["clip.v1"][1], source.fusion.gate_bias["clip.v1"][0])
    assert torch.equal(target.projection.lins[("clip.v1", "sound.mfcc")].weight,
                       source.projection.lins[("clip.v1", "sound.mfcc")].weight)
    assert "relation_vectors[clip.v1|says.en|word]" in report.loaded


def test_score_terms_state_stays_the_target_graphs():
    source = model(AUDIO_TEXT, [SAYS], degree_prior=True, feature_similarity=True)
    target = model(AUDIO_TEXT, [SAYS], degree_prior=True, feature_similarity=True)
    source.degree_prior.set_degrees_({SAYS: torch.tensor([[0, 1, 1], [2, 2, 3]])})
    source.degree_prior.weights.fill_(0.5)
    source.similarity.weights.fill_(4.0)
    target.degree_prior.set_degrees_({SAYS: torch.tensor([[3], [0]])})
    mine = {k: v.clone() for k, v in target.state_dict().items() if k.startswith(LinkPredictor.GRAPH_STATE)}
    report = transfer_weights(target, source)
    assert len(mine) == 3 and not report.skipped
    for key, value in mine.items():   # its own degrees, and weights still to be fitted (0)
        assert torch.equal(target.state_dict()[key], value), key
    assert not any(name.startswith(LinkPredictor.GRAPH_STATE) for name in report.loaded + report.new)
    assert torch.equal(target.relation_vectors, source.relation_vectors)   # what the model learned still loads
