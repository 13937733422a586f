"""The objective interface of the training engine (`mmgraph.train.trainer.fit`).

An objective says what one epoch's steps are and what one step's loss is; the engine does the
rest once for all of them (optimiser, warm-up, clipping, freezing, DDP, checkpoints, resume,
the divergence guard, callbacks, validation and early stopping). Implementations:
`mmgraph.train.supervised.SupervisedObjective` (1-N or BCE link prediction),
`mmgraph.train.pretrain.PretrainObjective` (edge reconstruction, masked features, InfoNCE) and
`mmgraph.train.distill.Distillation` (a wrapper that mixes a teacher into another objective).

    class Objective:
        validates = False                      # no validation: the run trains all its epochs
        def start(self, x, m, device): ...     # once per fit, features on the device
        def epoch_steps(self, mode, epoch, generator, ctx): return [batch, ...]
        def step_loss(self, trained, batch, generator): return loss, {"loss": loss, "kl": kl}

`mode` is "full" (every step embeds the whole graph) or "mini" (neighbour-sampled subgraphs).
`epoch_steps` draws the epoch's random choices from the shared generator (the same on every
rank) and cuts each step's batch to this rank's share; `step_loss` draws from the rank's own
generator. `trained` is the :class:`Trained` module, inside DDP when under torchrun.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from mmgraph.errors import InputError

__all__ = ["Objective", "Trained"]


class Trained(nn.Module):
    """The link predictor and the modules only the objective uses (pretraining's feature
    decoders): one module, so that the optimiser, DDP and the guard see all of them.

    Its parameters are the model's, then the extras', in order (a supervised run's optimiser
    is the one over `model.parameters()`).
    """

    def __init__(self, model: nn.Module, extras: list[nn.Module] = ()):
        super().__init__()
        self.model = model
        self.extras = nn.ModuleList(extras)


class Objective:
    """What the engine minimises; see the module doc. Subclasses override the methods below."""

    validates: bool = False       # the engine evaluates the validation split (and stops early)
    name: str = "objective"       # the progress bar's label
    activity: str = "training"    # the log's "full-batch training: why"

    def modules(self) -> list[nn.Module]:
        """Modules trained besides the model (saved in the checkpoint, not in the run)."""
        return []

    def check(self, mode: str) -> None:
        """InputError when this objective cannot train in `mode` ("full" or "mini")."""
        if mode not in ("full", "mini"):
            raise InputError(f"{self.name}: unknown batching mode {mode!r}")

    def start(self, x: dict, m: dict, device: torch.device) -> None:
        """Once per run, before the first epoch: the whole graph's features on `device`."""

    def epoch_steps(self, mode: str, epoch: int, generator: torch.Generator, ctx) -> list[Any]:
        raise NotImplementedError

    def step_loss(self, trained: Trained, batch: Any, generator: torch.Generator) -> tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError

    def log_line(self, row: dict) -> str:
        """One line of the log for an epoch without validation."""
        return "  ".join(f"{k} {v:.4f}" for k, v in row.items() if k not in ("epoch", "seconds"))
