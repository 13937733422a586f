"""Callbacks of the training engine, and the guard that keeps a run from diverging.

`fit` calls every callback after each step (`on_step`), after each validation evaluation
(`on_eval`) and at the end of each epoch (`on_epoch`); a callback that returns True from
`on_eval` or `on_epoch` ends the run there (the best state so far is kept, as with early
stopping). Time limits, tuning pruners, logging and plots plug in here instead of into `fit`.

    class PrintEvals(Callback):
        def on_eval(self, epoch, metrics, value):
            print(epoch, value)
    fit(model, prepared, config, device=device, callbacks=[TimeLimit(60), PrintEvals()])
"""
from __future__ import annotations

import copy
import logging
import math
import time
from typing import Any

import torch

__all__ = ["Callback", "TimeLimit", "DivergenceGuard", "TrainingDiverged", "set_learning_rate", "warmup_factor"]

log = logging.getLogger("mmgraph.train")


class Callback:
    """Hooks of one training run; each returns nothing, or True to stop the run."""

    def on_start(self, config: Any) -> None:
        """Before the first epoch."""

    def on_step(self, epoch: int, step: int, loss: float) -> None:
        """After each optimiser step."""

    def on_eval(self, epoch: int, metrics: dict[str, float], value: float) -> bool | None:
        """After a validation evaluation: `metrics` is the valid `overall` dict, `value` the early-stop metric."""

    def on_epoch(self, epoch: int, row: dict[str, Any]) -> bool | None:
        """At the end of an epoch: `row` is the train_log.csv row."""


class TimeLimit(Callback):
    """Stop after `seconds` of training (checked at the end of each epoch); 0 disables it."""

    def __init__(self, seconds: float):
        self.seconds = float(seconds)
        self.started = time.perf_counter()
        self.reached_at: int | None = None

    def on_start(self, config: Any) -> None:
        self.started = time.perf_counter()

    def on_epoch(self, epoch: int, row: dict[str, Any]) -> bool:
        if self.seconds > 0 and time.perf_counter() - self.started >= self.seconds:
            self.reached_at = epoch
            log.info("time limit of %.0f s reached at epoch %d: keeping the best state so far", self.seconds, epoch)
            return True
        return False


class TrainingDiverged(RuntimeError):
    """Training kept diverging after every rollback; no metrics are reported from such a model."""


class DivergenceGuard:
    """Catches a run whose loss turns non-finite or explodes, and rolls it back with a smaller step.

    After every good epoch the guard snapshots the model and optimiser. An epoch is bad when its
    mean loss is not finite or exceeds ``factor * lowest + 1`` (the lowest epoch loss so far; the
    ``+ 1`` keeps losses near 0 from tripping it). An epoch's loss is measured along its steps, so
    a bad one may come from the previous epoch's last updates: a bad epoch restores the snapshot
    from *before* the previous epoch and multiplies the learning-rate scale by ``shrink``; after ``max_rollbacks`` rollbacks the run stops
    with :class:`TrainingDiverged`, naming the epoch and the loss, instead of reporting metrics.
    """

    def __init__(self, *, factor: float = 4.0, shrink: float = 0.5, max_rollbacks: int = 3):
        self.factor, self.shrink, self.max_rollbacks = factor, shrink, max_rollbacks
        self.lowest = math.inf
        self.rollbacks = 0
        self.lr_scale = 1.0
        self._snapshots: list[tuple[dict, dict]] = []   # the last two good states, oldest first

    def snapshot(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
        state = (copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict()))
        self._snapshots = [*self._snapshots[-1:], state]

    def is_bad(self, loss: float) -> bool:
        return not math.isfinite(loss) or loss > self.factor * max(self.lowest, 0.0) + 1.0

    def check(self, epoch: int, loss: float, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> bool:
        """True when the epoch was good (and is now the snapshot); False after a rollback.

        Weights that are no longer finite make the epoch bad whatever its loss said.
        """
        if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
            loss = math.nan
        if not self.is_bad(loss):
            self.lowest = min(self.lowest, loss)
            self.snapshot(model, optimizer)
            return True
        self.rollbacks += 1
        what = "not finite" if not math.isfinite(loss) else f"{loss:.4g}, over {self.factor:g}x the lowest {self.lowest:.4g}"
        if self.rollbacks > self.max_rollbacks or not self._snapshots:
            raise TrainingDiverged(f"training diverged at epoch {epoch}: loss {what}, after {self.rollbacks - 1} "
                                   f"rollback(s) with smaller steps; lower `lr` or set `model.embedding_norm`")
        weights, optimizer_state = self._snapshots[0]
        self._snapshots = self._snapshots[:1]   # a second bad epoch in a row goes back to the same state
        model.load_state_dict(weights)
        optimizer.load_state_dict(optimizer_state)
        self.lr_scale *= self.shrink   # `fit` sets every group's lr to base x lr_scale x warm-up
        log.warning("epoch %d: loss %s; rolled back to before the previous epoch with the learning rate x%.3g",
                    epoch, what, self.lr_scale)
        return False


def set_learning_rate(optimizer: torch.optim.Optimizer, base_lrs: list[float], scale: float) -> None:
    """Every param group's lr = its base lr x `scale` (warm-up and the guard's shrinking)."""
    for group, base in zip(optimizer.param_groups, base_lrs):
        group["lr"] = base * scale


def warmup_factor(epoch: int, warmup_epochs: int) -> float:
    """Linear warm-up: epoch 1 of `warmup_epochs` trains at 1/warmup_epochs of the lr, then 1."""
    return 1.0 if warmup_epochs <= 0 else min(1.0, epoch / warmup_epochs)
