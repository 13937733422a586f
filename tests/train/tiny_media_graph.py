"""A tiny two-type graph built through the real manifest path, with numeric features only (fast)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def write_tiny_graph(root: Path, *, items: int = 40, groups: int = 4, seed: int = 0) -> Path:
    """Items whose 2 numeric columns say which group they belong to; relation item -in-> group."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(groups, 2)) * 3
    rows, links = ["item,f1,f2"], ["item,group,split"]
    for i in range(items):
        g = i % groups
        f = centres[g] + rng.normal(size=2) * 0.3
        rows.append(f"i{i},{f[0]:.4f},{f[1]:.4f}")
        split = "test" if i % 5 == 0 else "valid" if i % 5 == 1 else "train"
        links.append(f"i{i},g{g},{split}")
    (root / "items.csv").write_text("\n".join(rows) + "\n")
    (root / "groups.csv").write_text("group\n" + "\n".join(f"g{g}" for g in range(groups)) + "\n")
    (root / "links.csv").write_text("\n".join(links) + "\n")
    (root / "manifest.yaml").write_text(
        "name: tiny\n"
        "nodes:\n"
        "  item: {table: items.csv, id: item, features: {f: {modality: numeric, columns: [f1, f2]}}}\n"
        "  group: {table: groups.csv, id: group}\n"
        "edges:\n"
        "  - {relation: in, table: links.csv, source: {type: item, column: item},\n"
        "     target: {type: group, column: group}, split: split}\n")
    return root / "manifest.yaml"
