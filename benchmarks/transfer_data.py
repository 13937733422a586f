"""Variants of the embedded digits-av dataset for the transfer benchmark, written as manifests.

A variant is a folder with a `manifest.yaml`, copies of the (small) CSV tables, changed where
the variant asks, and links to the dataset's `clips/` and `images/` media (media paths resolve
against the manifest's folder, so they stay valid, and the feature cache still hits):

- `few_shot`: only a share of the `says` training rows stays (drawn per word, seeded); valid
  and test rows are unchanged, so the test set is the same as the full graph's;
- `drop_node_type`: a node type and every edge that touches it removed (e.g. no images);
- `write_speaker_variant`: the same graph with another FSDD speaker held out (its clips replaced
  by those of the speaker the demo leaves out), so cold start can be measured on every speaker.

    folder = write_variant(DIGITS_AV, work / "few-shot-0", says_fraction=0.1, seed=0)
    graph_dir = build_graph_dir(folder / "manifest.yaml", work / "graphs" / "few-shot-0")
"""
from __future__ import annotations

import csv
import os
import random
from pathlib import Path

import yaml

__all__ = ["DIGITS_AV", "FSDD_SPEAKERS", "WORDS", "subsample_train_rows", "write_speaker_variant",
           "write_variant"]

DIGITS_AV = Path(__file__).resolve().parents[1] / "datasets" / "digits-av"
FSDD_SPEAKERS = ("george", "jackson", "lucas", "nicolas")
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def subsample_train_rows(rows: list[dict], fraction: float, *, seed: int, split_column: str = "split",
                         stratify: str | None = None) -> list[dict]:
    """Keep `fraction` of the rows whose split is 'train' (rounded, at least one per stratum), all others.

    Pure: rows in, rows out, same order. With `stratify` (a column), the rows are drawn within
    each of its values (k-shot per class) and the total is shared out by largest remainder, so
    10% of 360 rows over 10 classes keeps exactly 36 and no class loses all its training rows.

    Example::

        kept = subsample_train_rows(rows, 0.1, seed=0, stratify="word")   # 36 of 360 train rows
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    rng = random.Random(seed)
    strata: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        if row.get(split_column) == "train":
            strata.setdefault(row[stratify] if stratify else "", []).append(i)
    keys = sorted(strata)
    quota = {k: fraction * len(strata[k]) for k in keys}
    count = {k: max(1, int(quota[k])) for k in keys}
    left = round(fraction * sum(len(v) for v in strata.values())) - sum(count.values())
    by_remainder = sorted(keys, key=lambda k: (quota[k] - int(quota[k]), rng.random()), reverse=True)
    for k in by_remainder[:max(0, left)]:
        count[k] = min(count[k] + 1, len(strata[k]))
    keep = {i for i, row in enumerate(rows) if row.get(split_column) != "train"}
    for k in keys:
        keep.update(rng.sample(strata[k], count[k]))
    return [row for i, row in enumerate(rows) if i in keep]


def _read(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def _write(path: Path, fields: list[str], rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def write_variant(dataset: Path, out: Path, *, says_fraction: float = 1.0, seed: int = 0,
                  drop_node_type: str | None = None, relation: str = "says") -> Path:
    """Write a variant of `dataset` (digits-av layout) into `out`; returns `out`."""
    manifest = yaml.safe_load((dataset / "manifest.yaml").read_text())
    out.mkdir(parents=True, exist_ok=True)
    if drop_node_type is not None:
        if drop_node_type not in manifest["nodes"]:
            raise ValueError(f"{dataset}: no node type {drop_node_type!r}")
        del manifest["nodes"][drop_node_type]
        manifest["edges"] = [e for e in manifest["edges"]
                             if drop_node_type not in (e["source"]["type"], e["target"]["type"])]
        manifest["name"] = f"{manifest['name']}-no-{drop_node_type}"
    tables = [spec["table"] for spec in manifest["nodes"].values()] + [e["table"] for e in manifest["edges"]]
    for table in tables:
        fields, rows = _read(dataset / table)
        edge = next((e for e in manifest["edges"] if e["table"] == table), None)
        if edge is not None and edge["relation"] == relation and says_fraction < 1.0:
            rows = subsample_train_rows(rows, says_fraction, seed=seed, split_column=edge.get("split", "split"),
                                        stratify=edge["target"]["column"])
        _write(out / table, fields, rows)
    if says_fraction < 1.0:
        manifest["name"] = f"{manifest['name']}-{relation}-{says_fraction:g}-seed{seed}"
    for media in ("clips", "images"):
        link = out / media
        if (dataset / media).is_dir() and not link.exists():
            os.symlink((dataset / media).resolve(), link, target_is_directory=True)
    (out / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return out


def write_speaker_variant(dataset: Path, out: Path, *, held_out: str, recordings: Path,
                          takes: int = 16) -> Path:
    """digits-av with the clips of every FSDD speaker but `held_out` (takes 0..takes-1 of each digit,
    split as the demo's: takes 0-2 test, 3 valid, the rest train); images and words unchanged."""
    if held_out not in FSDD_SPEAKERS:
        raise ValueError(f"held_out must be one of {FSDD_SPEAKERS}, got {held_out!r}")
    write_variant(dataset, out)
    speakers = [s for s in FSDD_SPEAKERS if s != held_out]
    clips, says, spoken_by = [], [], []
    for speaker in speakers:
        for digit, word in enumerate(WORDS):
            for take in range(takes):
                clip_id = f"{digit}_{speaker}_{take}"
                path = os.path.relpath(recordings / f"{clip_id}.wav", out)
                clips.append({"clip_id": clip_id, "path": path})
                split = "test" if take <= 2 else "valid" if take == 3 else "train"
                says.append({"clip_id": clip_id, "word": word, "split": split})
                spoken_by.append({"clip_id": clip_id, "speaker": speaker})
    _write(out / "clips.csv", ["clip_id", "path"], clips)
    _write(out / "clip_says_word.csv", ["clip_id", "word", "split"], says)
    _write(out / "clip_spoken_by.csv", ["clip_id", "speaker"], spoken_by)
    _write(out / "speakers.csv", ["speaker"], [{"speaker": s} for s in speakers])
    return out
