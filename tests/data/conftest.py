"""Helpers for the data tests: write a small dataset (tables + manifest) into tmp_path."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml


@pytest.fixture
def write_dataset(tmp_path):
    """`write_dataset(manifest_dict, {"items.csv": "id\\na\\n", ...}) -> manifest path`."""

    def write(manifest: dict, files: dict[str, str | bytes] | None = None,
              name: str = "manifest.yaml") -> Path:
        for rel, content in (files or {}).items():
            path = tmp_path / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        path = tmp_path / name
        path.write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
        return path

    return write


@pytest.fixture
def items_manifest():
    """`items_manifest(**node_keys)`: a one-type manifest over items.csv (id column `id`)."""

    def make(**node_overrides) -> dict:
        node = {"table": "items.csv", "id": "id"}
        node.update(node_overrides)
        return {"name": "test", "nodes": {"item": node}}

    return make
