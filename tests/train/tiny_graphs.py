"""Tiny graphs of the three kinds the recipe tells apart, written as manifests (fast to build)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def write_tiny_kg(root: Path, *, entities: int = 30, seed: int = 0, vectors: bool = False) -> Path:
    """Triples: entity i -next-> i+1 and -prev-> i-1 and -pair-> i^1 around a ring; given splits.
    `vectors` gives every entity an 8-d vector feature (its position on the ring, with noise)."""
    rng = np.random.default_rng(seed)
    triples = []
    for i in range(entities):
        triples += [(i, "next", (i + 1) % entities), (i, "prev", (i - 1) % entities), (i, "pair", i ^ 1)]
    order = rng.permutation(len(triples))
    parts = {"train": order[: int(0.8 * len(order))], "valid": order[int(0.8 * len(order)): int(0.9 * len(order))],
             "test": order[int(0.9 * len(order)):]}
    files = {}
    for split, rows in parts.items():
        path = root / f"{split}.txt"
        path.write_text("".join(f"e{triples[r][0]}\t{triples[r][1]}\te{triples[r][2] % entities}\n" for r in rows))
        files[split] = path.name
    nodes = ""
    if vectors:
        angle = 2 * np.pi * np.arange(entities) / entities
        x = np.stack([np.cos(angle), np.sin(angle)] * 4, 1) + rng.normal(size=(entities, 8)) * 0.1
        np.save(root / "x.npy", x.astype(np.float32))
        (root / "entities.csv").write_text("entity\n" + "".join(f"e{i}\n" for i in range(entities)))
        nodes = "nodes:\n  entity: {table: entities.csv, id: entity, features: {ring: {modality: vector, npy: x.npy}}}\n"
    (root / "manifest.yaml").write_text(
        "name: tiny-kg\n" + nodes + "edges:\n"
        f"  - {{triples: {{train: {files['train']}, valid: {files['valid']}, test: {files['test']}}}, "
        "source_type: entity, target_type: entity}\n")
    return root / "manifest.yaml"


def write_tiny_citations(root: Path, *, nodes: int = 60, seed: int = 0) -> Path:
    """One node type with 16-d vectors (two clusters) and one relation linking nodes of a cluster."""
    rng = np.random.default_rng(seed)
    cluster = np.arange(nodes) % 2
    x = rng.normal(size=(nodes, 16)).astype(np.float32) * 0.3
    x[:, 0] += np.where(cluster == 0, 2.0, -2.0)
    np.save(root / "x.npy", x)
    (root / "papers.csv").write_text("paper\n" + "".join(f"p{i}\n" for i in range(nodes)))
    edges = {(min(i, j), max(i, j)) for i in range(nodes) for j in rng.choice(nodes, 4)
             if i != j and cluster[i] == cluster[j]}
    (root / "cites.csv").write_text("src,dst\n" + "".join(f"p{i},p{j}\n" for i, j in sorted(edges)))
    (root / "manifest.yaml").write_text(
        "name: tiny-citations\n"
        "nodes:\n  paper: {table: papers.csv, id: paper, features: {bow: {modality: vector, npy: x.npy}}}\n"
        "edges:\n  - {relation: cites, table: cites.csv, source: {type: paper, column: src},\n"
        "     target: {type: paper, column: dst}}\n")
    return root / "manifest.yaml"
