"""Training configuration: one frozen dataclass, filled from YAML and the command line."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmgraph.errors import InputError
from mmgraph.models import ModelConfig

# Valid metrics early stopping can maximise; auc and ap turn on the classification metrics.
EARLY_STOP_METRICS = ("mrr", "hits@1", "hits@3", "hits@10", "auc", "ap")


@dataclass(frozen=True)
class TrainConfig:
    """Everything `mmgraph train` needs besides the graph.

    `loss="1-n"` scores each supervision edge against every candidate of the right type in both
    directions (filtered softmax cross-entropy, what reaches the published knowledge-graph numbers);
    `loss="bce"` uses `num_negatives` filtered negatives per edge. `supervision_ratio` is the share
    of training edges held out of message passing in each epoch and used as supervision (disjoint,
    so the model never learns to read an edge off its own message); "auto" uses 0.3 when the model
    passes messages and 1.0 (every edge supervises) when it does not. `use_features=False` drops
    every media feature (the learned-embeddings-only ablation).
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    epochs: int = 200
    lr: float = 0.01
    weight_decay: float = 0.0
    batch_size: int = 4096
    loss: str = "1-n"
    num_negatives: int = 32
    label_smoothing: float = 0.0
    supervision_ratio: float | str = "auto"
    split_ratios: tuple[float, float, float] = (0.85, 0.05, 0.10)
    eval_every: int = 5
    patience: int = 10
    seed: int = 0
    relations: tuple[str, ...] = ()
    use_features: bool = True      # False: the ablation with learned embeddings only
    grad_clip: float = 1.0
    n3_weight: float = 0.0         # > 0: N3 regularisation of the 1-N batches (Lacroix et al. 2018)
    optimizer: str = "adam"        # adam | adagrad
    early_stop_metric: str = "mrr"  # the valid metric early stopping maximises: mrr, hits@k, auc, ap

    def __post_init__(self) -> None:
        if self.loss not in ("1-n", "bce"):
            raise InputError(f"train config: loss must be '1-n' or 'bce', not {self.loss!r}")
        if self.epochs < 1 or self.eval_every < 1 or self.batch_size < 1:
            raise InputError("train config: epochs, eval_every and batch_size must be >= 1")
        if self.optimizer not in ("adam", "adagrad"):
            raise InputError(f"train config: optimizer must be 'adam' or 'adagrad', not {self.optimizer!r}")
        if self.early_stop_metric not in EARLY_STOP_METRICS:
            raise InputError(f"train config: early_stop_metric must be one of {', '.join(EARLY_STOP_METRICS)}, "
                             f"not {self.early_stop_metric!r}")
        if self.n3_weight < 0 or (self.n3_weight > 0 and self.loss != "1-n"):
            raise InputError("train config: n3_weight must be >= 0, and applies to loss '1-n' only")
        if self.supervision_ratio != "auto" and not 0.0 < float(self.supervision_ratio) <= 1.0:
            raise InputError("train config: supervision_ratio must be 'auto' or in (0, 1]")

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config") -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InputError(f"{source}: unknown training option(s) {unknown}; known: {sorted(names)}")
        values = dict(data)
        if "model" in values and not isinstance(values["model"], ModelConfig):
            values["model"] = ModelConfig.from_dict(values["model"] or {}, source=source)
        if "split_ratios" in values:
            values["split_ratios"] = tuple(float(v) for v in values["split_ratios"])
        if "relations" in values:
            values["relations"] = tuple(values["relations"] or ())
        try:
            return cls(**values)
        except TypeError as e:
            raise InputError(f"{source}: {e}") from e

    @classmethod
    def from_yaml(cls, path: str | Path) -> "TrainConfig":
        import yaml

        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise InputError(f"{path}: cannot read config: {e}") from e
        if not isinstance(data, dict):
            raise InputError(f"{path}: a config must be a mapping of option: value")
        return cls.from_dict(data, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["split_ratios"] = list(self.split_ratios)
        out["relations"] = list(self.relations)
        return out

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)
