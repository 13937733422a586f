"""Fitting the weights of the score terms beside the scorer on the validation split.

Two terms have weights per scored relation, fitted after training rather than by gradient:
the feature similarity (`mmgraph.nn.similarity`, one weight) and the degree prior
(`mmgraph.nn.degree_prior`, one per end of the relation). Each weight is the value of its grid
with the best validation metric (the run's early-stop metric, MRR unless set otherwise) for that
relation, or for that relation's head or tail queries (ties go to the smaller weight; 0, the
term off, is on each grid, so no relation's validation metric goes down). The similarity is fitted first, then the prior with the similarity's weights in place.
A grid instead of gradient steps: one number per relation, chosen the way early stopping chooses
the epoch, and the test split is never read. A relation's ranks read only its own weights, so one
evaluation per grid value scores every relation at once.

Measured (README "What `train` chooses", 2026-12-06): WN18RR with gloss text, the similarity
took test MRR from .463 to .494 and the prior then to .524; the prior alone took WN18RR's
structure model from .463 to .480, UMLS from .949 to .961 and Kinships from .865 to .884; on
Cora the similarity (fitted on valid AUC) took test AUC / AP from 92.2 / 92.8 to 93.2 / 93.7.

    z = embed_for_eval(model, prepared, device)          # the weights do not change the embeddings
    report = fit_score_terms(model, prepared, z, evaluate, seed=0)
    report["degree_prior"]["weights"]   # {"entity|_hypernym|entity": [0.0, 0.5], ...}: (head end, tail end)
"""
from __future__ import annotations

import logging

import torch

from mmgraph.data.graph import edge_key

__all__ = ["DEGREE_GRID", "SIMILARITY_GRID", "fit_score_terms", "set_training_degrees"]

log = logging.getLogger("mmgraph")

SIMILARITY_GRID = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
# In units of the score: a 1-N softmax score is a log-probability, so w multiplies the odds by degree^w.
DEGREE_GRID = (0.0, 0.125, 0.25, 0.5, 1.0, 2.0)


def set_training_degrees(model, prepared) -> None:
    """Fill the degree prior's log-degrees from the training edges of each scored relation."""
    if model.degree_prior is not None:
        model.degree_prior.set_degrees_({tuple(et): prepared.split_edges_of(et, "train") for et in model.relations})


@torch.no_grad()
def fit_score_terms(model, prepared, z: dict, evaluate, *, seed: int = 0, metric: str = "mrr") -> dict:
    """Fit every score term the model has on the validation `metric` (the run's early-stop metric);
    ``{term: report}`` (empty when it has none or the graph has no validation edges).
    `z`: `embed_for_eval`'s embeddings (they carry the terms' columns)."""
    terms = [(name, module, grid) for name, module, grid in (
        ("feature_similarity", model.similarity, SIMILARITY_GRID),
        ("degree_prior", model.degree_prior, DEGREE_GRID)) if module is not None]
    relations = [et for et in model.relations if prepared.split_edges_of(et, "valid").size(1) > 0]
    if terms and not relations:
        log.info("score terms: no validation edges to fit their weights on; they stay off")
        return {}
    return {name: _fit_term(name, module, grid, model, prepared, z, evaluate, relations, seed, metric)
            for name, module, grid in terms}


def _fit_term(name, module, grid, model, prepared, z, evaluate, relations, seed, metric) -> dict:
    """One term's weights. A term with a weight per end of a relation (``weights [R, 2]``: source,
    target) picks each end on its own for a rank metric: tail queries read only the target end's
    weight and head queries only the source end's, so one grid evaluation serves both."""
    per_end = module.weights.dim() == 2 and metric not in ("auc", "ap")
    by_weight = {}
    for w in grid:
        module.weights.fill_(w)
        by_weight[w] = evaluate(model, prepared, z, split="valid", seed=seed, relations=relations,
                                with_classification=metric in ("auc", "ap"), by_direction=per_end)["relations"]
    module.weights.zero_()
    weights, total, count = {}, 0.0, 0
    for et in relations:
        key = edge_key(et)

        def best(column: str) -> float:
            return max(grid, key=lambda w: (by_weight[w][key][column], -w))

        rows = by_weight[0.0][key]["count"]
        if per_end:   # a relation's metric is the mean of its tail and head queries' (as many of each)
            chosen = [best(f"head_{metric}"), best(f"tail_{metric}")]
            value = (by_weight[chosen[0]][key][f"head_{metric}"] + by_weight[chosen[1]][key][f"tail_{metric}"]) / 2
        else:
            chosen = best(metric)
            value = by_weight[chosen][key][metric]
        weights[key] = chosen
        module.weights[model.relations.index(et)] = torch.tensor(chosen, dtype=module.weights.dtype)
        # a relation's ranks read only its own weights: the fitted value is the chosen rows' mean
        total += value * rows
        count += rows
    without = by_weight[0.0]
    report = {"weights": weights, "metric": metric,
              f"valid_{metric}_without": sum(r[metric] * r["count"] for r in without.values()) / count,
              f"valid_{metric}_with": total / count}
    log.info("%s: weights per relation%s from validation %s (%s): %.4f -> %.4f", name.replace("_", " "),
             " (head end, tail end)" if per_end else "", metric,
             ", ".join(f"{k.split('|')[1]} {'/'.join(f'{x:g}' for x in v) if per_end else f'{v:g}'}"
                       for k, v in weights.items()),
             report[f"valid_{metric}_without"], report[f"valid_{metric}_with"])
    return report
