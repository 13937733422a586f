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
