"""ModelConfig: every choice that shapes a LinkPredictor, as one frozen dataclass."""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Mapping

from mmgraph.errors import InputError
from mmgraph.models.registry import ACTIVATIONS, CONVS, FUSIONS, LEARNED_EMBEDDINGS, NORMS, SCORERS

__all__ = ["ModelConfig"]


@dataclass(frozen=True)
class ModelConfig:
    """The model's architecture and regularisation; the defaults work on every graph.

    Example::

        config = ModelConfig.from_dict({"conv": "rgcn", "scorer": "rotate"}, source="cfg.yaml")
        config.channels, config.to_dict()["conv"]   # 128, "rgcn"
    """

    channels: int = 128                  # token, hidden and embedding size
    num_layers: int = 2                  # message-passing layers (0: features only)
    conv: str = "sage"                   # sage | rgcn | hgt | compgcn | gcn
    fusion: str = "attention"            # mean | gated | attention
    fusion_heads: int = 4
    variational: bool = True             # VariationalHead, else a linear head
    linear_head: bool = True             # without the variational head: False keeps the embeddings as they are
    kl_weight: float = 1e-3              # the trainer's KLSchedule max weight
    kl_warmup_epochs: int = 10
    free_bits: float = 0.0               # nats per dimension (Kingma et al. 2016)
    embedding_norm: float = 0.0          # > 0: every embedding is scaled to this L2 norm (0: off)
    scorer: str = "distmult"             # dot | distmult | complex | rotate | transe | mlp | conve
    distance_norm: int = 1               # p of TransE / RotatE distances (1 or 2)
    margin: float = 0.0                  # gamma added to TransE / RotatE scores
    reciprocal: bool = False             # head queries through a learned inverse relation (ReciprocalScorer)
    dropout: float = 0.1
    feature_dropout: float = 0.1         # drop whole modalities in training (cold start)
    learned_embeddings: str = "featureless"  # featureless | all | none
    embedding_init_std: float = 1.0      # std of learned embeddings at init (the KG recipe: 0.1)
    feature_input: bool = True           # features feed the projection (False: learned embeddings only)
    feature_similarity: bool = False     # features also feed a per-relation similarity term, fitted on valid
    degree_prior: bool = False           # a per-relation log training-degree term, fitted on valid
    norm: str = "layer"                  # layer | batch | none
    residual: bool = True
    act: str = "gelu"                    # gelu | relu | silu | elu | tanh
    # conv options, passed only to the conv that takes them (see registry.CONVS)
    aggr: str = "mean"                   # sage
    num_bases: int | None = None         # rgcn
    heads: int = 2                       # hgt
    composition: str = "mult"            # compgcn

    def __post_init__(self):
        _check_types(self, "model config")
        choices = {"conv": CONVS, "fusion": FUSIONS, "scorer": SCORERS,
                   "learned_embeddings": LEARNED_EMBEDDINGS, "norm": NORMS, "act": ACTIVATIONS,
                   "aggr": ("mean", "sum", "max"), "composition": ("sub", "mult", "corr")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise InputError(f"model config: {name} = {getattr(self, name)!r}; choose one of "
                                 f"{', '.join(sorted(allowed))}")
        positive = {"channels": self.channels, "fusion_heads": self.fusion_heads, "heads": self.heads}
        for name, value in positive.items():
            if value < 1:
                raise InputError(f"model config: {name} must be >= 1, got {value}")
        if self.embedding_init_std <= 0:
            raise InputError(f"model config: embedding_init_std must be > 0, got {self.embedding_init_std}")
        ranges = {"num_layers": (self.num_layers, 0, None), "kl_weight": (self.kl_weight, 0, None),
                  "kl_warmup_epochs": (self.kl_warmup_epochs, 0, None),
                  "free_bits": (self.free_bits, 0, None),
                  "embedding_norm": (self.embedding_norm, 0, None),
                  "dropout": (self.dropout, 0, 1), "feature_dropout": (self.feature_dropout, 0, 1)}
        for name, (value, low, high) in ranges.items():
            if value < low or (high is not None and value >= high):
                bound = f"in [{low}, {high})" if high is not None else f">= {low}"
                raise InputError(f"model config: {name} must be {bound}, got {value}")
        if self.variational and not self.linear_head:
            raise InputError("model config: linear_head = false needs variational = false (the variational "
                             "head is the head)")
        if self.distance_norm not in (1, 2):
            raise InputError(f"model config: distance_norm must be 1 or 2, got {self.distance_norm}")
        if self.num_bases is not None and self.num_bases < 1:
            raise InputError(f"model config: num_bases must be >= 1 or null, got {self.num_bases}")
        if self.channels % self.fusion_heads:
            raise InputError(f"model config: channels ({self.channels}) must be divisible by fusion_heads "
                             f"({self.fusion_heads})")
        if self.conv == "hgt" and self.channels % self.heads:
            raise InputError(f"model config: channels ({self.channels}) must be divisible by heads "
                             f"({self.heads})")
        if self.scorer in ("complex", "rotate") and self.channels % 2:
            raise InputError(f"model config: scorer {self.scorer!r} needs an even channels, "
                             f"got {self.channels}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, *, source: str = "model config") -> "ModelConfig":
        """Build from plain values (a YAML mapping); unknown keys are an InputError naming them."""
        data = dict(data or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"{source}: unknown model option(s) {', '.join(map(repr, unknown))}; "
                             f"known options are {', '.join(sorted(known))}")
        hints = typing.get_type_hints(cls)
        for name, value in data.items():
            if hints[name] is float and isinstance(value, int) and not isinstance(value, bool):
                data[name] = float(value)  # YAML writes 1e-3 as a float but 1 as an int
        try:
            return cls(**data)
        except InputError as e:
            reason = str(e).removeprefix("model config: ")
            raise InputError(f"{source}: {reason}") from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_types(config: ModelConfig, source: str) -> None:
    """Reject values of the wrong type (e.g. channels: "128") with the field's name."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value, hint = getattr(config, field.name), hints[field.name]
        allowed = tuple(a for a in typing.get_args(hint) if a is not type(None)) or (hint,)
        if value is None and type(None) in typing.get_args(hint):
            continue
        ok = isinstance(value, allowed) and not (isinstance(value, bool) and bool not in allowed)
        if float in allowed and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            names = " or ".join(a.__name__ for a in allowed)
            raise InputError(f"{source}: {field.name} must be {names}, got {value!r}")
