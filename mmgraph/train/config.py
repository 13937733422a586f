"""Training configuration: one frozen dataclass, filled from YAML and the command line."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmgraph.errors import InputError
from mmgraph.models import ModelConfig
from mmgraph.train.optim import PRECISIONS

# Valid metrics early stopping can maximise; auc and ap turn on the classification metrics.
EARLY_STOP_METRICS = ("mrr", "hits@1", "hits@3", "hits@10", "auc", "ap")


class ConfigFile:
    """What every settings dataclass offers: read from YAML, plain dict out, a changed copy."""

    @classmethod
    def from_yaml(cls, path: str | Path):
        return cls.from_dict(read_config_yaml(path), source=str(path))

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)

    def replace(self, **changes: Any):
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class TrainConfig(ConfigFile):
    """Everything `mmgraph train` needs besides the graph.

    `loss="1-n"` scores each supervision edge against every candidate of the right type in both
    directions (filtered softmax cross-entropy, what reaches the published knowledge-graph numbers);
    `loss="bce"` uses `num_negatives` filtered negatives per edge. `supervision_ratio` is the share
    of training edges held out of message passing in each epoch and used as supervision (disjoint,
    so the model never learns to read an edge off its own message); "auto" uses 0.3 when the model
    passes messages and 1.0 (every edge supervises) when it does not. `use_features=False` drops
    every media feature (the learned-embeddings-only ablation).

    `warmup_epochs` ramps the learning rate up linearly; `max_minutes` caps the training time (the
    best state so far is kept); `tune` first searches the settings that matter on the validation
    split within `tune_budget_minutes` (Optuna, `mmgraph.train.tune`).

    `batching`: "full" embeds the whole graph every step; "mini" samples `fanouts[l]`
    in-neighbours per node and edge type at layer l around each batch's seeds (see
    `mmgraph.train.batching`); "auto" picks full-batch when its estimated activation memory fits
    `memory_budget_gb` (0: half the available RAM, or 80 % of free CUDA memory). `fanouts=()`
    means 10 per layer.
    Cold start (mmgraph.train.inductive): `inductive` holds that share of each scored relation's
    source nodes out of the training graph (their training edges validate); `cold_start_ratio` is
    the share of supervised source nodes that lose every message edge but their feature-derived
    kNN ones in each step (what a brand-new item has). Distillation
    (mmgraph.train.distill, `--distill-from`): the label loss is mixed with `distill_weight` times
    the KL between the teacher's and the student's 1-N distributions at `distill_temperature`.
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
    batching: str = "auto"         # auto | full | mini
    fanouts: tuple[int, ...] = ()  # mini-batch in-neighbours per layer; () = 10 per layer
    memory_budget_gb: float = 0.0  # "auto" batching's budget; 0 = detect
    inductive: float = 0.0         # share of source nodes held out of the training graph
    cold_start_ratio: float = 0.0  # share of supervised nodes left with kNN edges only, each step
    distill_weight: float = 0.5    # with --distill-from: weight of the teacher's loss
    distill_temperature: float = 2.0
    freeze_epochs: int = 0         # with `train --init`: keep the pretrained parts fixed this many epochs
    n3_weight: float = 0.0         # > 0: N3 regularisation of the 1-N batches (Lacroix et al. 2018)
    optimizer: str = "adam"        # adam | adagrad
    early_stop_metric: str = "mrr"  # the valid metric early stopping maximises: mrr, hits@k, auc, ap
    warmup_epochs: int = 0         # linear learning-rate warm-up over this many epochs
    max_minutes: float = 0.0       # > 0: stop after this much training time, keep the best state
    precision: str = "fp32"        # the step's forward: fp32 | bf16 (autocast) | auto (bf16 where native)
    tune: bool = False             # search the settings on the validation split first (mmgraph.train.tune)
    tune_budget_minutes: float = 10.0  # the search's wall-time budget

    def __post_init__(self) -> None:
        if self.loss not in ("1-n", "bce"):
            raise InputError(f"train config: loss must be '1-n' or 'bce', not {self.loss!r}")
        if self.epochs < 1 or self.eval_every < 1 or self.batch_size < 1:
            raise InputError("train config: epochs, eval_every and batch_size must be >= 1")
        if self.warmup_epochs < 0 or self.max_minutes < 0 or self.tune_budget_minutes <= 0:
            raise InputError("train config: warmup_epochs and max_minutes must be >= 0, tune_budget_minutes > 0")
        if self.freeze_epochs < 0:
            raise InputError(f"train config: freeze_epochs must be >= 0, got {self.freeze_epochs}")
        if self.precision not in PRECISIONS:
            raise InputError(f"train config: precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        if self.optimizer not in ("adam", "adagrad"):
            raise InputError(f"train config: optimizer must be 'adam' or 'adagrad', not {self.optimizer!r}")
        if self.early_stop_metric not in EARLY_STOP_METRICS:
            raise InputError(f"train config: early_stop_metric must be one of {', '.join(EARLY_STOP_METRICS)}, "
                             f"not {self.early_stop_metric!r}")
        if self.n3_weight < 0 or (self.n3_weight > 0 and self.loss != "1-n"):
            raise InputError("train config: n3_weight must be >= 0, and applies to loss '1-n' only")
        if self.supervision_ratio != "auto" and not 0.0 < float(self.supervision_ratio) <= 1.0:
            raise InputError("train config: supervision_ratio must be 'auto' or in (0, 1]")
        if self.batching not in ("auto", "full", "mini"):
            raise InputError(f"train config: batching must be 'auto', 'full' or 'mini', not {self.batching!r}")
        if any(isinstance(k, bool) or not isinstance(k, int) or (k < 1 and k != -1) for k in self.fanouts):
            raise InputError(f"train config: fanouts must be positive ints (or -1: all), got {list(self.fanouts)}")
        if self.fanouts and len(self.fanouts) != self.model.num_layers:
            raise InputError(f"train config: fanouts gives {len(self.fanouts)} values for "
                             f"{self.model.num_layers} layers (one per layer)")
        if self.memory_budget_gb < 0:
            raise InputError("train config: memory_budget_gb must be >= 0 (0: detect)")
        for name in ("inductive", "cold_start_ratio"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise InputError(f"train config: {name} must lie in [0, 1), got {getattr(self, name)}")
        if not 0.0 <= self.distill_weight <= 1.0 or self.distill_temperature <= 0:
            raise InputError("train config: distill_weight must lie in [0, 1] and distill_temperature be > 0")

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config") -> "TrainConfig":
        return config_from_dict(cls, data, source=source, what="training", sequences=("relations", "fanouts"))



def supervision_ratio(config: TrainConfig) -> float:
    """The share of training edges that supervise in an epoch (the rest pass messages)."""
    if config.supervision_ratio != "auto":
        return float(config.supervision_ratio)
    return 0.3 if config.model.num_layers > 0 else 1.0


def config_from_dict(cls, data: dict[str, Any], *, source: str, what: str, sequences: tuple[str, ...] = ()):
    """A frozen config dataclass from plain values (YAML): unknown keys and bad values name `source`.

    `model` becomes a ModelConfig, `split_ratios` a tuple of floats, each of `sequences` a tuple.
    """
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise InputError(f"{source}: unknown {what} option(s) {unknown}; known: {sorted(names)}")
    values = dict(data)
    if "model" in values and not isinstance(values["model"], ModelConfig):
        values["model"] = ModelConfig.from_dict(values["model"] or {}, source=source)
    if "split_ratios" in values:
        values["split_ratios"] = tuple(float(v) for v in values["split_ratios"])
    for name in sequences:
        if name in values:
            values[name] = tuple(values[name] or ())
    try:
        return cls(**values)
    except TypeError as e:
        raise InputError(f"{source}: {e}") from e


def read_config_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML config file; InputError naming the file otherwise."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise InputError(f"{path}: cannot read config: {e}") from e
    if not isinstance(data, dict):
        raise InputError(f"{path}: a config must be a mapping of option: value")
    return data


def config_to_dict(config) -> dict[str, Any]:
    """Plain values (tuples as lists), what `config_from_dict` reads back."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}
