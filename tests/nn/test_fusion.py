"""Fusion: contracts, and the masked-fusion property (what is behind a false mask is ignored)."""
from __future__ import annotations

import pytest
import torch
from cases import ModuleContract, one_thread  # noqa: F401 (autouse fixture)
from hypothesis import given, settings
from hypothesis import strategies as st

from mmgraph.nn import AttentionFusion, GatedFusion, MeanFusion

SLOTS = {"clip": 3, "word": 2}


def _inputs(n: int = 6):
    tokens = {t: torch.randn(n, s, 8) for t, s in SLOTS.items()}
    # Every (type, slot) is absent somewhere and present somewhere, so every token gets a gradient.
    mask = {t: (torch.arange(n)[:, None] + torch.arange(s)[None]) % 3 != 0 for t, s in SLOTS.items()}
    return tokens, mask


class _FusionContract(ModuleContract):
    def make_inputs(self):
        return _inputs()

    def expected_shapes(self, inputs):
        return {t: (6, 8) for t in SLOTS}


class TestMeanFusionContract(_FusionContract):
    module_class = MeanFusion

    def make_module(self):
        return MeanFusion(8, SLOTS)


class TestGatedFusionContract(_FusionContract):
    module_class = GatedFusion

    def make_module(self):
        return GatedFusion(8, SLOTS)


class TestAttentionFusionContract(_FusionContract):
    module_class = AttentionFusion

    def make_module(self):
        return AttentionFusion(8, SLOTS, heads=2)


FUSIONS = {"mean": lambda: MeanFusion(8, SLOTS), "gated": lambda: GatedFusion(8, SLOTS),
           "attention": lambda: AttentionFusion(8, SLOTS, heads=2, dropout=0.5)}


@pytest.mark.parametrize("name", sorted(FUSIONS))
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), garbage=st.sampled_from([None, 0.0, 1e6, float("nan")]))
def test_values_behind_false_mask_do_not_change_output_or_gradients(name, seed, garbage):
    torch.manual_seed(seed)
    fusion = FUSIONS[name]().eval()
    tokens, _ = _inputs()
    mask = {t: torch.rand(v.shape[:2]) < 0.5 for t, v in tokens.items()}
    changed = {t: torch.where(mask[t][..., None], v,
                              torch.randn_like(v) * 100 if garbage is None else torch.full_like(v, garbage))
               for t, v in tokens.items()}
    a = fusion(tokens, mask)
    b = fusion(changed, mask)
    for t in a:
        assert torch.equal(a[t], b[t])
    grads = []
    for inputs in (tokens, changed):
        fusion.zero_grad()
        sum(out.sum() for out in fusion(inputs, mask).values()).backward()
        grads.append([p.grad.clone() for p in fusion.parameters() if p.grad is not None])
    assert all(torch.equal(x, y) for x, y in zip(*grads))


@pytest.mark.parametrize("name", sorted(FUSIONS))
def test_absent_slot_uses_the_learned_token(name):
    """Nodes missing the same slots get outputs that depend on that slot's learned token."""
    fusion = FUSIONS[name]().eval()
    tokens, _ = _inputs(2)
    mask = {t: torch.tensor([[True] * (s - 1) + [False]] * 2) for t, s in SLOTS.items()}
    before = fusion(tokens, mask)
    with torch.no_grad():
        fusion.missing["clip"][-1].add_(1.0)  # clip's last slot
    after = fusion(tokens, mask)
    assert not torch.allclose(before["clip"], after["clip"])
    assert torch.equal(before["word"], after["word"])


def test_attention_weights_are_a_distribution_and_types_are_checked():
    fusion = AttentionFusion(8, SLOTS, heads=4)
    with pytest.raises(ValueError, match="divisible"):
        AttentionFusion(10, SLOTS, heads=4)
    with pytest.raises(ValueError, match=r"\[N, 3, 8\]"):
        fusion({"clip": torch.randn(2, 2, 8)}, {"clip": torch.ones(2, 2, dtype=torch.bool)})
    with pytest.raises(KeyError, match="paper"):
        fusion({"paper": torch.randn(2, 2, 8)}, {"paper": torch.ones(2, 2, dtype=torch.bool)})
    # Equal tokens in every slot: any convex combination returns lin_out(lin_v(token)).
    token = torch.randn(1, 1, 8).expand(3, 3, 8)
    out = fusion({"clip": token}, {"clip": torch.ones(3, 3, dtype=torch.bool)})["clip"]
    torch.testing.assert_close(out, fusion.lin_out(fusion.lin_v(token[:, 0])))
