"""benchmarks/transfer_data.py: few-shot subsampling of training rows and dataset variants."""
from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest
import yaml

from mmgraph.data.manifest import load_manifest

from bench_modules import load_bench_module

data = load_bench_module("transfer_data")
ROWS = [{"clip": f"c{i}", "word": f"w{i % 4}", "split": "train" if i < 80 else ("valid" if i < 90 else "test")}
        for i in range(100)]


def test_subsample_keeps_a_share_of_train_rows_per_class_and_every_other_row():
    kept = data.subsample_train_rows(ROWS, 0.1, seed=0, stratify="word")
    train = [r for r in kept if r["split"] == "train"]
    assert Counter(r["word"] for r in train) == {f"w{k}": 2 for k in range(4)}      # 20 per word -> 2 (8 of 80)
    assert [r for r in kept if r["split"] != "train"] == ROWS[80:]
    assert kept == [r for r in ROWS if r in kept]                                     # order kept
    assert data.subsample_train_rows(ROWS, 0.1, seed=0, stratify="word") == kept      # seeded
    assert data.subsample_train_rows(ROWS, 0.1, seed=1, stratify="word") != kept
    assert len([r for r in data.subsample_train_rows(ROWS, 0.01, seed=0, stratify="word")
                if r["split"] == "train"]) == 4                                       # at least one per class
    with pytest.raises(ValueError):
        data.subsample_train_rows(ROWS, 0.0, seed=0)


def _says_rows(folder: Path) -> list[dict]:
    with open(folder / "clip_says_word.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_variants_of_the_demo_dataset(tmp_path):
    few = data.write_variant(data.DIGITS_AV, tmp_path / "few", says_fraction=0.1, seed=0)
    full, rows = _says_rows(data.DIGITS_AV), _says_rows(few)
    count = Counter(r["split"] for r in rows)
    assert count["train"] == 36 and count["valid"] == 30 and count["test"] == 90
    assert Counter(r["split"] for r in full)["train"] == 360
    manifest = load_manifest(few / "manifest.yaml")            # parses; media resolve through the links
    assert (few / "clips" / Path(_read_first_path(few)).name).is_file()
    assert manifest is not None

    no_image = data.write_variant(data.DIGITS_AV, tmp_path / "no-image", drop_node_type="image")
    spec = yaml.safe_load((no_image / "manifest.yaml").read_text())
    assert "image" not in spec["nodes"] and [e["relation"] for e in spec["edges"]] == ["says", "spoken_by"]
    assert len(_says_rows(no_image)) == len(full)


def _read_first_path(folder: Path) -> str:
    with open(folder / "clips.csv", newline="") as f:
        return next(csv.DictReader(f))["path"]


FSDD = Path(__file__).resolve().parents[3] / "shared" / "data" / "fsdd" / "recordings"


@pytest.mark.skipif(not FSDD.is_dir(), reason="needs ../shared/data/fsdd")
def test_speaker_variant_swaps_the_held_out_speaker(tmp_path):
    out = data.write_speaker_variant(data.DIGITS_AV, tmp_path / "no-george", held_out="george",
                                     recordings=FSDD)
    rows = _says_rows(out)
    speakers = {r["clip_id"].split("_")[1] for r in rows}
    assert speakers == {"jackson", "lucas", "nicolas"} and len(rows) == 480
    assert Counter(r["split"] for r in rows) == Counter(train=360, valid=30, test=90)
    assert all(r["split"] == "test" for r in rows if int(r["clip_id"].split("_")[2]) <= 2)
    manifest = load_manifest(out / "manifest.yaml")
    assert manifest is not None and (out / _read_first_path(out)).resolve().is_file()
    with open(out / "speakers.csv", newline="") as f:
        assert [r["speaker"] for r in csv.DictReader(f)] == ["jackson", "lucas", "nicolas"]
    with pytest.raises(ValueError, match="held_out"):
        data.write_speaker_variant(data.DIGITS_AV, tmp_path / "x", held_out="alice", recordings=FSDD)
