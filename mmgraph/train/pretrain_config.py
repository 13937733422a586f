"""PretrainConfig: what `mmgraph pretrain` needs besides the graph, one frozen dataclass from YAML."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mmgraph.errors import InputError
from mmgraph.models import ModelConfig
from mmgraph.train.config import ConfigFile, config_from_dict
from mmgraph.train.optim import OPTIMIZERS, PRECISIONS

__all__ = ["PretrainConfig"]


@dataclass(frozen=True)
class PretrainConfig(ConfigFile):
    """Self-supervised pretraining: the weights of the three objectives and how their inputs are drawn.

    The loss of one epoch is
    ``edge_weight * edge + kl(epoch) * KL + feature_weight * masked_feature + contrastive_weight * InfoNCE``
    with the KL weight warmed up as in training (``model.kl_weight``, ``model.kl_warmup_epochs``).
    Pretraining runs through the training engine, so `optimizer`, `warmup_epochs`, `max_minutes`,
    `grad_clip` and `batching` ("full", or "mini" with `batch_size` hidden edges per step and
    `fanouts`) mean what they mean in TrainConfig; Adam stays the default.
    `held_out_relations` names the relations whose valid/test edges must stay unseen: the ones
    a later fine-tuning will evaluate (empty: every relation keeps its split, the safe default;
    relations without a split column are then split with `split_ratios` and `seed`, as `train` does).

    Example::

        config = PretrainConfig.from_dict({"epochs": 50, "feature_weight": 0.5, "model": {"channels": 64}})
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    epochs: int = 100
    lr: float = 0.003
    weight_decay: float = 0.0
    seed: int = 0
    held_out_relations: tuple[str, ...] = ()
    split_ratios: tuple[float, float, float] = (0.85, 0.05, 0.10)
    edge_weight: float = 1.0           # VGAE edge reconstruction (relation names ignored)
    feature_weight: float = 1.0        # masked-feature reconstruction
    contrastive_weight: float = 1.0    # cross-modal InfoNCE
    held_out_edges: float = 0.3        # share of training edges hidden from messages and reconstructed
    num_negatives: int = 4             # sampled non-edges per reconstructed edge
    mask_rate: float = 0.3             # share of present features hidden at the input
    temperature: float = 0.1           # InfoNCE temperature
    contrastive_batch: int = 512       # pairs per InfoNCE term
    grad_clip: float = 1.0
    # the engine's settings (`mmgraph.train.trainer.fit`), as in TrainConfig
    optimizer: str = "adam"            # adam | adagrad
    warmup_epochs: int = 0             # linear learning-rate warm-up over this many epochs
    max_minutes: float = 0.0           # > 0: stop after this much pretraining time
    precision: str = "fp32"            # the step's forward: fp32 | bf16 (autocast) | auto (bf16 where native)
    batching: str = "full"             # full: one step per epoch over the whole graph | mini: sampled subgraphs
    batch_size: int = 512              # mini-batch: hidden edges per step (their ends are the seeds)
    fanouts: tuple[int, ...] = ()      # mini-batch in-neighbours per layer; () = 10 per layer

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.num_negatives < 1 or self.contrastive_batch < 2:
            raise InputError("pretrain config: epochs and num_negatives must be >= 1, contrastive_batch >= 2")
        for name in ("edge_weight", "feature_weight", "contrastive_weight", "lr", "weight_decay", "grad_clip"):
            if getattr(self, name) < 0:
                raise InputError(f"pretrain config: {name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 < self.held_out_edges < 1.0:
            raise InputError(f"pretrain config: held_out_edges must be in (0, 1), got {self.held_out_edges}")
        if not 0.0 <= self.mask_rate <= 1.0:
            raise InputError(f"pretrain config: mask_rate must be in [0, 1], got {self.mask_rate}")
        if self.temperature <= 0:
            raise InputError(f"pretrain config: temperature must be > 0, got {self.temperature}")
        if self.precision not in PRECISIONS:
            raise InputError(f"pretrain config: precision must be one of {', '.join(PRECISIONS)}, "
                             f"not {self.precision!r}")
        if self.optimizer not in OPTIMIZERS:
            raise InputError(f"pretrain config: optimizer must be one of {', '.join(OPTIMIZERS)}, "
                             f"not {self.optimizer!r}")
        if self.batching not in ("full", "mini"):
            raise InputError(f"pretrain config: batching must be 'full' or 'mini', not {self.batching!r}")
        if self.batch_size < 1 or self.warmup_epochs < 0 or self.max_minutes < 0:
            raise InputError("pretrain config: batch_size must be >= 1, warmup_epochs and max_minutes >= 0")
        if any(isinstance(k, bool) or not isinstance(k, int) or (k < 1 and k != -1) for k in self.fanouts) or (
                self.fanouts and len(self.fanouts) != self.model.num_layers):
            raise InputError(f"pretrain config: fanouts must give one positive int (or -1: all) per layer, "
                             f"got {list(self.fanouts)} for {self.model.num_layers} layers")
        if self.edge_weight == self.feature_weight == self.contrastive_weight == 0:
            raise InputError("pretrain config: every objective has weight 0; nothing to learn")

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "pretrain config") -> "PretrainConfig":
        try:
            return config_from_dict(cls, data, source=source, what="pretraining", sequences=("held_out_relations", "fanouts"))
        except InputError as e:  # a value check of __post_init__: name the source, not "pretrain config"
            if not str(e).startswith("pretrain config: "):
                raise
            raise InputError(f"{source}: {str(e).removeprefix('pretrain config: ')}") from None
