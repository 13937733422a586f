"""FeatureProjection: contract, slots, masks, learned embeddings, feature dropout."""
from __future__ import annotations

import pytest
import torch
from cases import ModuleContract, one_thread  # noqa: F401 (autouse fixture)

from mmgraph.errors import InputError
from mmgraph.nn import FeatureProjection
from mmgraph.nn.projection import LEARNED_SLOT

# clip: audio (32) + a 1-column number; image: one 16-dim feature and a learned slot; word: none.
DIMS = {"clip": {"sound": 32, "age": 1}, "image": {"picture": 16}, "word": {}}
NUM = {"clip": 5, "image": 4, "word": 3}


def _inputs():
    x = {t: {f: torch.randn(NUM[t], d) for f, d in feats.items()} for t, feats in DIMS.items()}
    mask = {"clip": {"sound": torch.tensor([1, 1, 0, 1, 0], dtype=torch.bool),
                     "age": torch.tensor([1, 0, 1, 1, 0], dtype=torch.bool)},
            "image": {"picture": torch.tensor([1, 0, 1, 1], dtype=torch.bool)},
            "word": {}}
    return x, mask


def _projection(**options):
    return FeatureProjection(DIMS, 8, num_nodes=NUM, learned_types=["image"], **options)


class TestFeatureProjectionContract(ModuleContract):
    module_class = FeatureProjection

    def make_module(self):
        return _projection()

    def make_inputs(self):
        return _inputs()

    def expected_shapes(self, inputs):
        return ({"clip": (5, 2, 8), "image": (4, 2, 8), "word": (3, 1, 8)},
                {"clip": (5, 2), "image": (4, 2), "word": (3, 1)})


def test_slots_and_token_mask_follow_features():
    proj = _projection()
    assert proj.slot_names == {"clip": ["sound", "age"], "image": ["picture", LEARNED_SLOT],
                               "word": [LEARNED_SLOT]}
    assert proj.num_slots == {"clip": 2, "image": 2, "word": 1}
    x, mask = _inputs()
    tokens, token_mask = proj(x, mask)
    assert torch.equal(token_mask["clip"], torch.stack([mask["clip"]["sound"], mask["clip"]["age"]], 1))
    assert torch.equal(token_mask["image"][:, 0], mask["image"]["picture"])
    assert token_mask["image"][:, 1].all() and token_mask["word"].all()
    assert (tokens["clip"][~token_mask["clip"]] == 0).all()  # absent slots carry nothing


def test_values_behind_a_false_mask_change_nothing():
    proj = _projection()
    x, mask = _inputs()
    x2 = {t: {f: v.clone() for f, v in feats.items()} for t, feats in x.items()}
    x2["clip"]["sound"][~mask["clip"]["sound"]] = float("nan")
    x2["image"]["picture"][~mask["image"]["picture"]] = 1e6
    a, _ = proj(x, mask)
    b, _ = proj(x2, mask)
    for t in a:
        assert torch.equal(a[t], b[t])


def test_learned_embeddings_follow_global_ids_and_new_nodes_are_absent():
    proj = _projection().eval()
    x, mask = _inputs()
    full, _ = proj(x, mask)
    # A subgraph: words 2 and 0, and image rows 3, 1 plus a brand-new image (-1).
    n_id = {"word": torch.tensor([2, 0]), "image": torch.tensor([3, 1, -1])}
    sub_x = {"clip": x["clip"], "image": {"picture": x["image"]["picture"][[3, 1, 0]]}}
    sub_mask = {"clip": mask["clip"], "image": {"picture": mask["image"]["picture"][[3, 1, 0]]}}
    tokens, token_mask = proj(sub_x, sub_mask, n_id)
    assert torch.allclose(tokens["word"][:, 0], full["word"][[2, 0], 0])
    assert torch.allclose(tokens["image"][:2, 1], full["image"][[3, 1], 1])
    assert token_mask["image"][:, 1].tolist() == [True, True, False]
    assert (tokens["image"][2, 1] == 0).all()


def test_small_features_are_not_layer_normalised_away():
    proj = FeatureProjection({"n": {"age": 1}}, 4).eval()
    x = {"n": {"age": torch.tensor([[0.0], [1.0], [2.0]])}}
    tokens, _ = proj(x, {"n": {"age": torch.ones(3, dtype=torch.bool)}})
    assert not torch.allclose(tokens["n"][0], tokens["n"][2])


def test_feature_dropout_drops_slots_in_training_only_and_keeps_one():
    dims = {"item": {"a": 8, "b": 8, "c": 8}}
    proj = FeatureProjection(dims, 4, feature_dropout=0.7)
    n = 400
    x = {"item": {f: torch.randn(n, 8) for f in "abc"}}
    full = {"item": {f: torch.ones(n, dtype=torch.bool) for f in "abc"}}
    full["item"]["c"][::2] = False
    kept = proj(x, full)[1]["item"]
    original = torch.stack([full["item"][f] for f in "abc"], 1)
    assert (kept <= original).all(), "dropout may only remove present slots"
    assert kept.any(1).all(), "every node keeps one present slot"
    share = kept.sum() / original.sum()
    assert 0.3 < share < 0.7
    proj.eval()
    kept_eval = proj(x, full)[1]["item"]
    assert torch.equal(kept_eval, original)


def test_bad_input_names_type_and_feature():
    proj = _projection()
    x, mask = _inputs()
    del x["clip"]["age"]
    with pytest.raises(InputError, match="'clip'.*'age'"):
        proj(x, mask)
    x, mask = _inputs()
    x["image"]["picture"] = torch.randn(3, 16)
    with pytest.raises(InputError, match="'image'.*'picture'"):
        proj(x, mask)
    with pytest.raises(InputError, match="'image'.*2 ids for 4 rows"):
        proj(*_inputs(), {"image": torch.tensor([0, 1])})
    with pytest.raises(InputError, match="out of range"):
        proj(*_inputs(), {"word": torch.tensor([0, 3])})
    with pytest.raises(InputError, match="'word'.*num_nodes"):
        FeatureProjection(DIMS, 8, num_nodes={"clip": 5})
