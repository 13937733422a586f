"""A tiny graph whose explanations are known by construction (numeric features only: fast).

- `query -in-> group`: a query's own feature is noise; its one `near` edge to an anchor, whose
  feature is its group's one-hot code, is all that tells the group. So the `near` edge carries
  each test link of a query.
- `item -of-> group`: an item has `signal` (its group's one-hot code) and `noise`; the signal
  alone decides the score.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

GROUPS = 4


def _one_hot(g: int, rng) -> list[str]:
    return [f"{float(g == c) + 0.05 * rng.normal():.4f}" for c in range(GROUPS)]


def _split(i: int) -> str:
    return "test" if i % 5 == 0 else "valid" if i % 5 == 1 else "train"


def write_explain_graph(root: Path, *, count: int = 48, seed: int = 0) -> Path:
    """Write the tables and manifest under `root`; returns the manifest path."""
    rng = np.random.default_rng(seed)
    queries, anchors, near, query_in = ["query,n1,n2"], ["anchor,s1,s2,s3,s4"], ["query,anchor"], ["query,group,split"]
    items, item_of = ["item,s1,s2,s3,s4,n1,n2"], ["item,group,split"]
    for i in range(count):
        g = i % GROUPS
        noise = rng.normal(size=2)
        queries.append(f"q{i},{noise[0]:.4f},{noise[1]:.4f}")
        anchors.append(f"a{i}," + ",".join(_one_hot(g, rng)))
        near.append(f"q{i},a{i}")
        query_in.append(f"q{i},g{g},{_split(i)}")
        noise = rng.normal(size=2)
        items.append(f"i{i}," + ",".join(_one_hot(g, rng)) + f",{noise[0]:.4f},{noise[1]:.4f}")
        item_of.append(f"i{i},g{g},{_split(i)}")
    files = {"queries.csv": queries, "anchors.csv": anchors, "near.csv": near, "query_in.csv": query_in,
             "items.csv": items, "item_of.csv": item_of, "groups.csv": ["group"] + [f"g{g}" for g in range(GROUPS)]}
    for name, lines in files.items():
        (root / name).write_text("\n".join(lines) + "\n")
    (root / "manifest.yaml").write_text(
        "name: explain-tiny\n"
        "nodes:\n"
        "  query: {table: queries.csv, id: query, features: {noise: {modality: numeric, columns: [n1, n2]}}}\n"
        "  anchor: {table: anchors.csv, id: anchor, features: {code: {modality: numeric, columns: [s1, s2, s3, s4]}}}\n"
        "  item: {table: items.csv, id: item, features: {signal: {modality: numeric, columns: [s1, s2, s3, s4]},\n"
        "         noise: {modality: numeric, columns: [n1, n2]}}}\n"
        "  group: {table: groups.csv, id: group}\n"
        "edges:\n"
        "  - {relation: near, table: near.csv, source: {type: query, column: query},\n"
        "     target: {type: anchor, column: anchor}}\n"
        "  - {relation: in, table: query_in.csv, source: {type: query, column: query},\n"
        "     target: {type: group, column: group}, split: split}\n"
        "  - {relation: of, table: item_of.csv, source: {type: item, column: item},\n"
        "     target: {type: group, column: group}, split: split}\n")
    return root / "manifest.yaml"


TRAIN_YAML = ("epochs: 60\neval_every: 10\npatience: 40\nlr: 0.02\nrelations: [in, of]\n"
              "model: {channels: 16, num_layers: 1, dropout: 0.0}\n")
