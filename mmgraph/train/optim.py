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
                   *, grad_clip: float) -> None:
    """Backward and one update; gradients of `parameters` clipped to norm `grad_clip` when > 0."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(parameters, grad_clip)
    optimizer.step()
