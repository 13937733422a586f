"""Evaluation: filtered ranking and classification metrics (CONTRACT.md sections 4 and 5).

`from mmgraph.eval import ranking_metrics` is the public metric. Names are imported lazily so
that `import mmgraph.eval` stays cheap.
"""
from __future__ import annotations

from mmgraph._lazy import lazy_exports

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

__all__, __getattr__, __dir__ = lazy_exports("mmgraph.eval", _EXPORTS, globals())
