"""mmgraph: raw images, audio, text and numbers -> a heterogeneous graph -> trusted link scores.

Example::

    import mmgraph
    graph = mmgraph.build_graph("manifest.yaml")
    run = mmgraph.train(graph, relations=["says"], epochs=100)
    run.predict(node=("clip", "0_george_0"), relation="says", k=3)
"""
from __future__ import annotations

import types

__version__ = "0.1.0"

__all__ = ["build_graph", "load_graph", "train", "pretrain", "load_run", "Run", "__version__"]


def build_graph(manifest, **options):
    """Encode every item of a manifest and return the `HeteroData` graph (writes nothing)."""
    from mmgraph.data.builder import build_graph as _build

    return _build(manifest, **options)


def load_graph(graph_dir):
    """Read `GRAPH_DIR/graph.pt` written by `mmgraph build`."""
    from mmgraph.data.graph_io import load_graph as _load

    return _load(graph_dir)


class _CallableTrainPackage(types.ModuleType):
    """`mmgraph.train` is both the training subpackage and the front door `mmgraph.train(graph, ...)`.

    A plain function named `train` here would be replaced by the subpackage as soon as anything
    imports `mmgraph.train.<module>` (the import system sets the package attribute). So the
    package module itself is made callable instead; it stays the same object whatever is
    imported later, and `mmgraph/train/` itself knows nothing of the API above it.
    """

    def __call__(self, graph, **options):
        """`mmgraph.api.train(graph, **options)`: train a link predictor in memory; see its docs."""
        from mmgraph.api import train as _train

        return _train(graph, **options)


from mmgraph import train  # noqa: E402  (a light package: its __init__ imports nothing)

train.__class__ = _CallableTrainPackage


def __getattr__(name: str):
    # The rest of the API loads torch; `import mmgraph` stays light until it is used.
    if name in ("pretrain", "load_run", "Run"):
        from mmgraph import api

        return getattr(api, name)
    raise AttributeError(f"module 'mmgraph' has no attribute {name!r}")
