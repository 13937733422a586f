"""fit_score_terms with a stand-in evaluator: per-end weights for the degree prior, one for the similarity."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from mmgraph.nn.degree_prior import DegreePrior
from mmgraph.nn.similarity import FeatureSimilarity
from mmgraph.train.score_terms import DEGREE_GRID, fit_score_terms

LINK = ("entity", "link", "entity")


def _peak(w: float, at: float) -> float:
    return 1.0 / (1.0 + abs(w - at))   # a metric that is best at `at`


def test_the_prior_picks_each_end_and_the_similarity_one_weight_on_valid_only():
    model = SimpleNamespace(relations=[LINK], similarity=FeatureSimilarity(1),
                            degree_prior=DegreePrior([LINK], {"entity": 3}))
    prepared = SimpleNamespace(split_edges_of=lambda et, split: torch.zeros(2, 4, dtype=torch.long))
    splits = []

    def evaluate(model, prepared, z, *, split, seed, relations, with_classification, by_direction=False):
        splits.append(split)
        sim, (head_w, tail_w) = float(model.similarity.weights[0]), model.degree_prior.weights[0].tolist()
        tail, head = _peak(tail_w, 0.5) * _peak(sim, 4.0), _peak(head_w, 2.0) * _peak(sim, 4.0)
        row = {"count": 4, "mrr": (tail + head) / 2}
        if by_direction:
            row.update({"tail_mrr": tail, "head_mrr": head})
        return {"relations": {"entity|link|entity": row}}

    report = fit_score_terms(model, prepared, {}, evaluate, seed=0)
    assert set(splits) == {"valid"}                                        # test is never read
    assert report["feature_similarity"]["weights"] == {"entity|link|entity": 4.0}
    assert report["degree_prior"]["weights"] == {"entity|link|entity": [2.0, 0.5]}   # (head end, tail end)
    assert model.degree_prior.weights[0].tolist() == [2.0, 0.5] and float(model.similarity.weights[0]) == 4.0
    assert report["degree_prior"]["valid_mrr_with"] == pytest.approx(1.0)
    assert report["degree_prior"]["valid_mrr_without"] == pytest.approx(report["feature_similarity"]["valid_mrr_with"])
    assert 0.5 in DEGREE_GRID and 2.0 in DEGREE_GRID
