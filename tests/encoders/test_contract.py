"""The contract every registered encoder keeps, and a meta-test that each one is checked here."""
from __future__ import annotations

import json

import pytest
import torch

from mmgraph.encoders import encoder_from_spec, make_encoder, registered_encoders
from mmgraph.encoders.base import HF_FOLDER_NAME


def _digits(ctx, n=2):
    return [str(p) for p in ctx["digit_pngs"][:n]]


def _clips(ctx, n=2):
    return [str(p) for p in ctx["fsdd_wavs"][:n]]


# (modality, name) -> (build the encoder, example raw values). Every registered encoder needs one.
CASES = {
    ("numeric", "standard"): (lambda ctx: make_encoder("numeric"),
                              lambda ctx: [["1", "2"], ["3", None], ["5", "9"]]),
    ("categorical", "onehot"): (lambda ctx: make_encoder("categorical"), lambda ctx: ["b", "a", "c"]),
    ("vector", "raw"): (lambda ctx: make_encoder("vector"), lambda ctx: ["1 2 3 4", [0.5] * 4, "4,3,2,1"]),
    ("image", "efficientnet-lite0"): (lambda ctx: make_encoder("image"), _digits),
    ("image", "pixels"): (lambda ctx: make_encoder("image", "pixels"), _digits),
    ("audio", "signal"): (lambda ctx: make_encoder("audio", "signal"), _clips),
    ("audio", "speech"): (lambda ctx: make_encoder("audio", "speech"), _clips),
    ("text", "minilm"): (lambda ctx: make_encoder("text"), lambda ctx: ["zero", "a spoken digit", "nine"]),
    ("text", HF_FOLDER_NAME): (lambda ctx: make_encoder("text", str(ctx["tiny_models"]["bert"])),
                               lambda ctx: ["the cat", "one two", "dog"]),
    ("image", HF_FOLDER_NAME): (lambda ctx: make_encoder("image", str(ctx["tiny_models"]["clip"])), _digits),
    ("audio", HF_FOLDER_NAME): (lambda ctx: make_encoder("audio", str(ctx["tiny_models"]["wav2vec2"])),
                                _clips),
}


@pytest.fixture(scope="module")
def ctx(digit_pngs, fsdd_wavs, tiny_models):
    return {"digit_pngs": digit_pngs, "fsdd_wavs": fsdd_wavs, "tiny_models": tiny_models}


def test_every_registered_encoder_has_a_contract_case():
    assert set(registered_encoders()) == set(CASES), "add a CASES entry for each new encoder"


@pytest.mark.parametrize("key", sorted(CASES), ids=lambda k: f"{k[0]}-{k[1]}")
def test_encoder_contract(key, ctx):
    build, examples = CASES[key]
    enc = build(ctx)
    values = examples(ctx)
    assert (enc.modality, enc.name) == key
    enc.fit(values)
    assert enc.is_fitted and enc.dim > 0
    items = [enc.load(v) for v in values]
    x = enc.encode(items)
    assert x.shape == (len(values), enc.dim) and x.dtype == torch.float32 and x.device.type == "cpu"
    assert torch.isfinite(x).all()
    assert torch.equal(x, enc.encode([enc.load(v) for v in values]))  # deterministic
    identity = enc.identity
    assert isinstance(identity, str) and identity.startswith(f"{enc.modality}/{enc.name}")
    assert identity == enc.identity  # stable
    spec = json.loads(json.dumps(enc.spec()))  # JSON-able
    rebuilt = encoder_from_spec(spec)
    assert rebuilt.identity == identity and rebuilt.dim == enc.dim
    assert torch.allclose(rebuilt.encode([rebuilt.load(values[0])]), x[:1], atol=1e-4)
    assert enc.to("cpu") is enc and repr(enc).startswith(type(enc).__name__)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("key", [("image", "efficientnet-lite0"), ("audio", "signal"), ("text", "minilm")],
                         ids=lambda k: f"{k[0]}-{k[1]}")
def test_cuda_matches_cpu(key, ctx):
    build, examples = CASES[key]
    values = examples(ctx)
    cpu = build(ctx)
    gpu = build(ctx).to("cuda")
    x_cpu = cpu.encode([cpu.load(v) for v in values])
    x_gpu = gpu.encode([gpu.load(v) for v in values])
    assert x_gpu.device.type == "cpu"
    assert torch.allclose(x_cpu, x_gpu, atol=1e-3, rtol=1e-3)
