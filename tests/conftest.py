"""Shared fixtures: paths to ../shared/data and the embedded demo graph, built once per session."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from mmgraph.runtime import setup_process

setup_process()   # before torch loads, as the CLI does (mmgraph/runtime.py)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
DEMO_DATA = REPO / "datasets" / "digits-av"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is not there (clone the project with ../shared beside it)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory) -> Path:
    """A feature cache shared by every test that builds the demo graph."""
    return tmp_path_factory.mktemp("demo-cache")


@pytest.fixture(scope="session")
def demo_graph_dir(tmp_path_factory, demo_cache) -> Path:
    """The demo dataset built from its raw WAVs, PNGs and words with the packaged encoders."""
    from mmgraph.data.builder import build_graph
    from mmgraph.data.graph_io import write_graph

    out = tmp_path_factory.mktemp("demo") / "graph"
    graph, report = build_graph(DEMO_DATA / "manifest.yaml", device="cpu", cache_dir=demo_cache,
                                return_report=True)
    write_graph(graph, report, out)
    return out
