"""Keep the loaded (pretrained) parts of a model fixed for the first epochs of fine-tuning."""
from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["FreezeSchedule"]


class FreezeSchedule:
    """Freeze the entries `masks` marks (``{state_dict key: bool mask}``) up to epoch `epochs`.

    Frozen entries get zero gradients (so gradient clipping and Adam's moments ignore them) and
    are written back after every optimizer step (so weight decay cannot move them either);
    from epoch ``epochs + 1`` on everything trains. Masks may cover whole tensors or single
    rows (a pretrained relation vector next to a new one).

    Example::

        freeze = FreezeSchedule(model, report.loaded_masks, epochs=5)
        freeze.attach(optimizer)
        for epoch in range(1, 101):
            freeze.update(epoch)
            ...  # train one epoch
        freeze.release()
    """

    def __init__(self, model: nn.Module, masks: dict[str, Tensor], *, epochs: int):
        if epochs < 0:
            raise ValueError(f"freeze epochs must be >= 0, got {epochs}")
        params = dict(model.named_parameters())
        self.epochs = epochs
        self._marked = [(params[k], m) for k, m in masks.items() if k in params and bool(m.any())]
        self._frozen: list[tuple[nn.Parameter, Tensor, Tensor]] = []
        self._handles: list = []
        self._active = False

    @property
    def active(self) -> bool:
        return self._active

    def attach(self, optimizer: torch.optim.Optimizer) -> None:
        """Start freezing (call once, after the model moved to its device, before the first step)."""
        if self.epochs == 0 or not self._marked:
            return
        self._frozen = [(p, m.to(p.device), p.detach().clone()) for p, m in self._marked]
        for param, mask, _ in self._frozen:
            self._handles.append(param.register_hook(lambda grad, mask=mask: grad.masked_fill(mask, 0.0)))
        self._handles.append(optimizer.register_step_post_hook(lambda *_: self._restore()))
        self._active = True

    @torch.no_grad()
    def _restore(self) -> None:
        for param, mask, saved in self._frozen:
            param.data[mask] = saved[mask]

    def update(self, epoch: int) -> None:
        """Call at the start of each epoch (counted from 1): unfreezes after `epochs` epochs."""
        if self._active and epoch > self.epochs:
            self.release()

    def release(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._active = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(tensors={len(self._marked)}, epochs={self.epochs}, active={self._active})"
