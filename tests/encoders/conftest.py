"""Fixtures for the encoder tests: real media from ../shared/data and tiny saved HF models."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from encoder_media import FSDD, digit_rows, tiny_bert, tiny_clip, tiny_wav2vec2, write_digit_png
from mmgraph.utils import set_progress

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True, scope="session")
def _quiet_progress():
    set_progress(False)
    yield
    set_progress(True)


@pytest.fixture(scope="session")
def digit_pngs(tmp_path_factory) -> list[Path]:
    """Six real digit images as greyscale PNGs: two each of the digits 0, 1 and 2."""
    folder = tmp_path_factory.mktemp("digits")
    rows = [(i, px, label) for i, (px, label) in enumerate(digit_rows(40)) if label in (0, 1, 2)]
    picked = [r for label in (0, 1, 2) for r in [r for r in rows if r[2] == label][:2]]
    return [write_digit_png(px, folder / f"digit_{i}_{label}.png") for i, px, label in picked]


@pytest.fixture(scope="session")
def fsdd_wavs() -> list[Path]:
    """A few real FSDD clips: digits 0-2 of two speakers, two takes each."""
    return [FSDD / f"{d}_{s}_{t}.wav" for d in (0, 1, 2) for s in ("george", "lucas") for t in (0, 1)]


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """Tiny randomly initialised HF models saved to disk: a BERT, a CLIP, a Wav2Vec2."""
    root = tmp_path_factory.mktemp("hf")
    return {
        "bert": tiny_bert(root / "bert"),
        "clip": tiny_clip(root / "clip"),
        "wav2vec2": tiny_wav2vec2(root / "wav2vec2"),
    }
