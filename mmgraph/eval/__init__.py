"""Evaluation: filtered ranking and classification metrics (CONTRACT.md sections 4 and 5).

`from mmgraph.eval import ranking_metrics` is the public metric. Names are imported lazily so
that `import mmgraph.eval` stays cheap.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "ranking_metrics": "mmgraph.eval.metrics",
    "ranks_from_scores": "mmgraph.eval.metrics",
    "ranks_to_metrics": "mmgraph.eval.metrics",
    "classification_metrics": "mmgraph.eval.metrics",
    "best_threshold": "mmgraph.eval.metrics",
    "roc_auc": "mmgraph.eval.metrics",
    "average_precision": "mmgraph.eval.metrics",
    "FilterIndex": "mmgraph.eval.ranking",
    "filtered_ranks": "mmgraph.eval.ranking",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mmgraph.eval' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
