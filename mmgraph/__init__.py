"""mmgraph: raw images, audio, text and numbers -> a heterogeneous graph -> trusted link scores."""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["build_graph", "load_graph", "__version__"]


def build_graph(manifest, **options):
    """Encode every item of a manifest and return the `HeteroData` graph (writes nothing)."""
    from mmgraph.data.builder import build_graph as _build

    return _build(manifest, **options)


def load_graph(graph_dir):
    """Read `GRAPH_DIR/graph.pt` written by `mmgraph build`."""
    from mmgraph.data.graph_io import load_graph as _load

    return _load(graph_dir)
