"""The optimiser named in the training config (strings resolved here, at the edge)."""
from __future__ import annotations

from typing import Iterable

import torch

OPTIMIZERS = ("adam", "adagrad")


def make_optimizer(config, parameters: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """Adam (the default) or Adagrad, which Lacroix et al. (2018) train ComplEx-N3 with."""
    if config.optimizer == "adagrad":
        return torch.optim.Adagrad(parameters, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.Adam(parameters, lr=config.lr, weight_decay=config.weight_decay)


def optimizer_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, parameters: Iterable[torch.nn.Parameter],
                   *, grad_clip: float) -> bool:
    """Backward and one update; gradients of `parameters` clipped to norm `grad_clip` when > 0.

    A step whose gradients are not finite is skipped (returns False) so one bad batch cannot
    poison the weights; the epoch's loss then reads non-finite and the divergence guard acts.
    Under DDP the gradients are already averaged, so every rank skips the same steps.
    """
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(parameters, grad_clip if grad_clip > 0 else float("inf"))
    if not torch.isfinite(norm):
        optimizer.zero_grad(set_to_none=True)
        return False
    optimizer.step()
    return True
