"""The one place where configuration strings become classes: conv, fusion and scorer names.

The core takes objects; only `ModelConfig` (from YAML or the CLI) carries strings, and
`LinkPredictor` resolves them here.
"""
from __future__ import annotations

from typing import Sequence

from torch import nn

from mmgraph.errors import InputError
from mmgraph.nn.conve import ConvEScorer
from mmgraph.nn.fusion import AttentionFusion, GatedFusion, MeanFusion
from mmgraph.nn.scorers import (ComplExScorer, DistMultScorer, DotProductScorer, MLPScorer, RotatEScorer,
                                Scorer, TransEScorer)

__all__ = ["CONVS", "FUSIONS", "SCORERS", "LEARNED_EMBEDDINGS", "NORMS", "ACTIVATIONS", "resolve",
           "conv_options", "make_fusion", "make_scorer"]

#: HeteroGNN's conv names -> the ModelConfig fields passed on as that conv's options.
CONVS: dict[str, tuple[str, ...]] = {
    "sage": ("aggr",),
    "rgcn": ("num_bases",),
    "hgt": ("heads",),
    "compgcn": ("composition",),
    "gcn": (),
}
FUSIONS: dict[str, type[nn.Module]] = {"mean": MeanFusion, "gated": GatedFusion, "attention": AttentionFusion}
SCORERS: dict[str, type[Scorer]] = {
    "dot": DotProductScorer,
    "distmult": DistMultScorer,
    "complex": ComplExScorer,
    "rotate": RotatEScorer,
    "transe": TransEScorer,
    "mlp": MLPScorer,
    "conve": ConvEScorer,
}
LEARNED_EMBEDDINGS = ("featureless", "all", "none")
NORMS = ("layer", "batch", "none")
ACTIVATIONS = ("gelu", "relu", "silu", "elu", "tanh")  # HeteroGNN's names (a test keeps them in step)

_TABLES = {"conv": CONVS, "fusion": FUSIONS, "scorer": SCORERS}


def resolve(kind: str, name: str):
    """The entry for `name` in the `kind` table ("conv", "fusion" or "scorer")."""
    table = _TABLES[kind]
    if name not in table:
        raise InputError(f"model config: unknown {kind} {name!r}; choose one of {', '.join(sorted(table))}")
    return table[name]


def conv_options(config) -> dict:
    """The keyword options HeteroGNN passes to the chosen conv."""
    return {field: getattr(config, field) for field in resolve("conv", config.conv)}


def make_fusion(config, slots: dict[str, int | Sequence[str]]) -> nn.Module:
    cls = resolve("fusion", config.fusion)
    if cls is AttentionFusion:
        return cls(config.channels, slots, heads=config.fusion_heads, dropout=config.dropout)
    return cls(config.channels, slots)


def make_scorer(config, dim: int) -> Scorer:
    scorer = _base_scorer(config, dim)
    if getattr(config, "reciprocal", False):
        from mmgraph.nn.reciprocal import ReciprocalScorer

        return ReciprocalScorer(scorer)
    return scorer


def _base_scorer(config, dim: int) -> Scorer:
    cls = resolve("scorer", config.scorer)
    if cls in (RotatEScorer, TransEScorer):
        return cls(p=config.distance_norm, margin=config.margin)
    if cls in (MLPScorer, ConvEScorer):
        return cls(dim)
    if cls is DistMultScorer:   # bounded embeddings: scores start wide enough to rank
        return cls(relation_init=0.5 if config.embedding_norm > 0 else None)
    return cls()
