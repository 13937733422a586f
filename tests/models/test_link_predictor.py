"""LinkPredictor on a tiny graph: forward/backward, scoring, subgraphs, save/load, learning."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny_graph import one_thread  # noqa: F401 (autouse fixture)
from tiny_graph import MESSAGE_EDGE_TYPES, RELATIONS, SAYS, SHOWS, model_inputs, tiny_graph

from mmgraph.errors import InputError
from mmgraph.models import GraphSchema, LinkPredictor, ModelConfig

GRAPH = tiny_graph()
SCHEMA = GraphSchema.from_graph(GRAPH, RELATIONS, MESSAGE_EDGE_TYPES)
SMALL = {"channels": 8, "fusion_heads": 2, "heads": 2, "kl_warmup_epochs": 0}


def _model(**options) -> LinkPredictor:
    torch.manual_seed(0)
    return LinkPredictor(ModelConfig.from_dict({**SMALL, **options}), SCHEMA)


@pytest.mark.parametrize("options", [
    {"num_layers": 0},
    {"num_layers": 2, "conv": "sage"},
    {"num_layers": 2, "conv": "rgcn", "num_bases": 2, "fusion": "gated"},
    {"num_layers": 1, "conv": "hgt", "fusion": "mean", "scorer": "rotate"},
    {"num_layers": 2, "conv": "compgcn", "scorer": "complex", "variational": False},
    {"num_layers": 1, "learned_embeddings": "all", "scorer": "mlp", "norm": "batch"},
    {"num_layers": 1, "scorer": "transe", "distance_norm": 2, "free_bits": 0.1},
    {"num_layers": 1, "scorer": "dot"},
], ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_embed_score_and_backward_reach_every_parameter(options):
    model = _model(**options).train()
    x, mask, edges = model_inputs(GRAPH)
    z, kl = model.embed(x, mask, edges)
    assert {t: tuple(v.shape) for t, v in z.items()} == {"clip": (8, 8), "image": (6, 8), "word": (4, 8)}
    assert kl.dim() == 0
    assert (kl > 0) if model.config.variational else (kl == 0)
    pos = model.score(SAYS, z["clip"], z["word"][GRAPH[SAYS].edge_index[1]])
    tails = model.score_tails(SHOWS, z["image"], z["word"])
    heads = model.score_heads(SAYS, z["clip"], z["word"][:3])
    assert pos.shape == (8,) and tails.shape == (6, 4) and heads.shape == (3, 8)
    (pos.sum() - tails.mean() + heads.mean() + kl).backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    # A type whose fusion query sees one slot gets no gradient (documented); nothing else may be dead.
    assert all(n.startswith("fusion.query") for n in dead), dead


def test_eval_embeddings_are_deterministic_and_kl_is_zero():
    model = _model(num_layers=2).eval()
    inputs = model_inputs(GRAPH)
    z1, kl = model.embed(*inputs)
    z2, _ = model.embed(*inputs)
    assert kl.item() == 0.0
    assert all(torch.equal(z1[t], z2[t]) for t in z1)


def test_one_to_n_scores_agree_with_pairs():
    model = _model(num_layers=1, scorer="rotate").eval()
    z, _ = model.embed(*model_inputs(GRAPH))
    tails = model.score_tails(SAYS, z["clip"], z["word"])
    heads = model.score_heads(SAYS, z["clip"], z["word"])
    for w in range(4):
        torch.testing.assert_close(tails[:, w], model.score(SAYS, z["clip"], z["word"][w].expand(8, -1)))
        torch.testing.assert_close(heads[w], model.score(SAYS, z["clip"], z["word"][w].expand(8, -1)))


def test_subgraph_with_global_ids_matches_the_full_graph_without_message_passing():
    model = _model(num_layers=0, learned_embeddings="all").eval()
    x, mask, _ = model_inputs(GRAPH)
    full, _ = model.embed(x, mask, {})
    rows = {"clip": torch.tensor([5, 1]), "image": torch.tensor([0]), "word": torch.tensor([3, 2])}
    sub_x = {t: {f: v[rows[t]] for f, v in fs.items()} for t, fs in x.items()}
    sub_mask = {t: {f: v[rows[t]] for f, v in fs.items()} for t, fs in mask.items()}
    sub, _ = model.embed(sub_x, sub_mask, {}, n_id_dict=rows)
    for t in rows:
        torch.testing.assert_close(sub[t], full[t][rows[t]])


def test_save_load_round_trip_gives_the_same_scores(tmp_path):
    model = _model(num_layers=2, conv="hgt", scorer="complex")
    x, mask, edges = model_inputs(GRAPH)
    with torch.no_grad():  # move the weights away from their initialisation
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    model.eval()
    z, _ = model.embed(x, mask, edges)
    expected = model.score_tails(SAYS, z["clip"], z["word"])
    extra = {"ids": {"word": ["one", "two", "three", "four"]}, "epoch": 3, "encoders": [{"identity": "x"}],
             "threshold": torch.tensor(0.5)}
    path = tmp_path / "model.pt"
    model.save(path, extra)
    loaded, got_extra = LinkPredictor.load(path)
    assert not loaded.training and loaded.config == model.config and loaded.schema == model.schema
    assert got_extra["ids"] == extra["ids"] and got_extra["epoch"] == 3
    z2, _ = loaded.embed(x, mask, edges)
    torch.testing.assert_close(loaded.score_tails(SAYS, z2["clip"], z2["word"]), expected, atol=0, rtol=0)
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # atomic: no temporary left behind


def test_save_rejects_values_that_weights_only_load_cannot_read(tmp_path):
    with pytest.raises(TypeError, match=r"extra\['when'\]"):
        _model(num_layers=0).save(tmp_path / "m.pt", {"when": object()})
    assert not (tmp_path / "m.pt").exists()


def test_load_rejects_other_files(tmp_path):
    with pytest.raises(InputError, match="no such model file"):
        LinkPredictor.load(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="junk.pt"):
        LinkPredictor.load(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(InputError, match="not an mmgraph model file"):
        LinkPredictor.load(tmp_path / "other.pt")


def test_bad_use_is_reported_clearly():
    model = _model(num_layers=0)
    z, _ = model.embed(*model_inputs(GRAPH))
    with pytest.raises(InputError, match=r"word\|means\|clip is not scored.*clip\|says\|word"):
        model.score(("word", "means", "clip"), z["word"], z["clip"][:4])
    with pytest.raises(InputError, match=r"learned_embeddings = 'none'.*\['word'\]"):
        _model(learned_embeddings="none")


def test_model_learns_the_relation_from_features():
    """Clips and images carry their word's identity in their features: a few steps separate
    true (clip, says, word) pairs from the others, which the initial model does not."""
    model = _model(num_layers=1, feature_dropout=0.0, dropout=0.0, channels=16, fusion_heads=2)
    x, mask, edges = model_inputs(GRAPH)
    target = torch.zeros(8, 4)
    target[torch.arange(8), GRAPH[SAYS].edge_index[1]] = 1.0

    def train_mrr():
        model.eval()
        with torch.no_grad():
            z, _ = model.embed(x, mask, edges)
            scores = model.score_tails(SAYS, z["clip"], z["word"])
        model.train()
        true = scores[target.bool()]
        return (1.0 / (1 + (scores > true[:, None]).sum(1)).float()).mean().item()

    before = train_mrr()
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(60):
        z, kl = model.embed(x, mask, edges)
        scores = model.score_tails(SAYS, z["clip"], z["word"])
        loss = torch.nn.functional.binary_cross_entropy_with_logits(scores, target) + 1e-3 * kl
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = train_mrr()
    assert after > 0.95 and after > before


@pytest.mark.parametrize("learned", ["featureless", "all"])
def test_brand_new_items_embed_alone_from_their_features(learned):
    """Cold start (predict --items): only the new rows, id -1, zero rows of other types, no edges."""
    model = _model(num_layers=2, learned_embeddings=learned).eval()
    x, mask, _ = model_inputs(GRAPH)
    new_x, new_mask, n_id = {}, {}, {}
    for t, feats in x.items():
        rows = 3 if t == "clip" else 0
        new_x[t] = {f: v[:rows] for f, v in feats.items()}
        new_mask[t] = {f: v[:rows] for f, v in mask[t].items()}
        n_id[t] = torch.full((rows,), -1)
    z, _ = model.embed(new_x, new_mask, {}, n_id_dict=n_id)
    assert z["clip"].shape == (3, 8) and z["word"].shape == (0, 8)
    assert torch.isfinite(z["clip"]).all()
    # Different features give different embeddings; the same features the same one.
    assert not torch.allclose(z["clip"][0], z["clip"][2])
    again, _ = model.embed(new_x, new_mask, {}, n_id_dict=n_id)
    assert torch.equal(again["clip"], z["clip"])


LEGACY = Path(__file__).parent / "data" / "legacy_v1_models.pt"


def test_models_saved_before_parameters_were_kept_by_name_load_and_agree(tmp_path):
    # Written by mmgraph at f458b32 (lists by position, PyG's ModuleDict keys), perturbed
    # weights; see each entry's config. Loading maps the old keys to names, same embeddings.
    saved = torch.load(LEGACY, weights_only=True)
    assert len(saved) == 5
    for name, entry in saved.items():
        torch.save(entry["payload"], tmp_path / f"{name}.pt")
        model, _ = LinkPredictor.load(tmp_path / f"{name}.pt")
        assert set(model.state_dict()) != set(entry["payload"]["state_dict"]), name  # the keys did change
        z, _ = model.embed(*model_inputs(GRAPH))
        for t, expected in entry["z"].items():
            torch.testing.assert_close(z[t], expected, msg=f"{name}: {t}")
