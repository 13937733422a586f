r"""Fuse a node's slot tokens (one per modality, plus a learned embedding) into one vector.

Every fusion first replaces each absent slot by a learned token per (node type, slot),

.. math::
    \tilde s_{v,k} = m_{v,k}\, s_{v,k} + (1 - m_{v,k})\, e_{t,k},

so a node with only audio and a node with only an image are both complete sequences in the
same space, and what stands behind a false mask never reaches the output (nor its gradients).
"""
from __future__ import annotations

import math

from typing import Sequence

import torch
from torch import Tensor, nn

from mmgraph.nn.named import NamedParameterDict, name_rows

__all__ = ["MeanFusion", "GatedFusion", "AttentionFusion"]


class _Unfilled(torch.autograd.Function):
    """`tokens` as they are, with a zero gradient for the learned tokens no slot needed."""

    @staticmethod
    def forward(ctx, tokens: Tensor, missing: Tensor) -> Tensor:
        ctx.missing_shape, ctx.missing_dtype = missing.shape, missing.dtype
        return tokens.view_as(tokens)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad, grad.new_zeros(ctx.missing_shape, dtype=ctx.missing_dtype)


class _SlotFusion(nn.Module):
    """Shared part: per-type learned tokens for absent slots, and input checks.

    `slots` gives each node type's slot count, or its slot names (then the rows of per-slot
    parameters are known by name, e.g. to fine-tune a model whose types gained a modality).
    """

    def __init__(self, channels: int, slots: dict[str, int | Sequence[str]]):
        super().__init__()
        self.channels = channels
        self.slot_names = {t: [str(i) for i in range(s)] if isinstance(s, int) else list(s)
                           for t, s in slots.items()}
        self.slots = {t: len(names) for t, names in self.slot_names.items()}
        self.missing = self._per_slot(channels)

    def _per_slot(self, channels: int) -> NamedParameterDict:
        """A [S_t, channels] parameter per type, its rows named by slot; formerly a list by position."""
        params = NamedParameterDict({t: nn.Parameter(torch.empty(s, channels)) for t, s in self.slots.items()},
                                    legacy="position")
        for t, names in self.slot_names.items():
            params.name_rows(t, names)
        return params

    def reset_parameters(self) -> None:
        for token in self.missing.values():
            nn.init.normal_(token, std=0.02)

    def _filled(self, t: str, tokens: Tensor, mask: Tensor) -> Tensor:
        if t not in self.slots:
            raise KeyError(f"{type(self).__name__}: unknown node type {t!r}")
        expected = self.slots[t]
        if tokens.dim() != 3 or tokens.size(1) != expected or tokens.size(2) != self.channels:
            raise ValueError(f"{type(self).__name__}: node type {t!r} needs tokens [N, {expected}, "
                             f"{self.channels}], got {list(tokens.shape)}")
        if mask.device.type == "cpu" and bool(mask.all()):   # nothing to fill (asking costs no sync on CPU)
            missing = self.missing[t]
            # the same gradients as the fill below (zero for the tokens), without a pass over the tokens
            return _Unfilled.apply(tokens, missing) if torch.is_grad_enabled() and missing.requires_grad else tokens
        missing = self.missing[t].to(tokens.dtype)
        return torch.where(mask[..., None], tokens, missing)

    def forward(self, tokens_dict: dict[str, Tensor], mask_dict: dict[str, Tensor]) -> dict[str, Tensor]:
        return {t: self._fuse(t, self._filled(t, tokens, mask_dict[t].to(torch.bool)))
                for t, tokens in tokens_dict.items()}

    def _fuse(self, t: str, filled: Tensor) -> Tensor:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        return f"{type(self).__name__}({self.channels}, slots={self.slots}{', ' + extra if extra else ''})"


class MeanFusion(_SlotFusion):
    r"""The mean over slots after absent ones take their learned token.

    .. math::
        h_v = \frac{1}{S_t} \sum_{k=1}^{S_t} \tilde s_{v,k}

    Shapes:
        - input: ``tokens_dict {t: [N_t, S_t, channels]}``, ``mask_dict {t: [N_t, S_t] bool}``
        - output: ``{t: [N_t, channels]}``

    Example::

        fusion = MeanFusion(64, {"clip": 2, "word": 1})
        out = fusion({"clip": torch.randn(5, 2, 64)}, {"clip": torch.rand(5, 2) > 0.5})
        out["clip"].shape   # (5, 64)
    """

    def __init__(self, channels: int, slots: dict[str, int | Sequence[str]]):
        super().__init__(channels, slots)
        self.reset_parameters()

    def _fuse(self, t: str, filled: Tensor) -> Tensor:
        return filled.mean(dim=1)


class GatedFusion(_SlotFusion):
    r"""A sigmoid gate per slot and channel, from the slot's own token, then the mean.

    .. math::
        g_{v,k} = \sigma(W_g \tilde s_{v,k} + b_{t,k}), \qquad
        h_v = \frac{1}{S_t} \sum_k g_{v,k} \odot \tilde s_{v,k}

    :math:`W_g` is shared; the bias :math:`b_{t,k}` is per (type, slot), so each modality has
    its own prior openness.

    Shapes:
        - input: ``tokens_dict {t: [N_t, S_t, channels]}``, ``mask_dict {t: [N_t, S_t] bool}``
        - output: ``{t: [N_t, channels]}``

    Example::

        fusion = GatedFusion(64, {"clip": 2})
        out = fusion({"clip": torch.randn(5, 2, 64)}, {"clip": torch.rand(5, 2) > 0.5})
        out["clip"].shape   # (5, 64)
    """

    def __init__(self, channels: int, slots: dict[str, int | Sequence[str]]):
        super().__init__(channels, slots)
        self.gate = nn.Linear(channels, channels, bias=False)
        self.gate_bias = self._per_slot(channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.gate.reset_parameters()
        for bias in self.gate_bias.values():
            nn.init.constant_(bias, 1.0)  # gates start mostly open (sigmoid(1) = 0.73)

    def _fuse(self, t: str, filled: Tensor) -> Tensor:
        bias = self.gate_bias[t].to(filled.dtype)
        return (torch.sigmoid(self.gate(filled) + bias) * filled).mean(dim=1)


class AttentionFusion(_SlotFusion):
    r"""A learned query per node type attends over the slots, with several heads.

    .. math::
        \alpha^{(i)}_{v,k} = \mathrm{softmax}_k\!\left(\frac{q^{(i)}_t \cdot W_K^{(i)} \tilde s_{v,k}}
            {\sqrt{c/H}}\right), \qquad
        h_v = W_O \big\Vert_{i=1}^{H} \sum_k \alpha^{(i)}_{v,k} W_V^{(i)} \tilde s_{v,k}

    Absent slots take part through their learned tokens, so the query learns how much an absent
    modality should count. With one slot the weights are 1 and the query gets no gradient.

    Shapes:
        - input: ``tokens_dict {t: [N_t, S_t, channels]}``, ``mask_dict {t: [N_t, S_t] bool}``
        - output: ``{t: [N_t, channels]}``

    Example::

        fusion = AttentionFusion(64, {"clip": 3}, heads=4)
        out = fusion({"clip": torch.randn(5, 3, 64)}, {"clip": torch.rand(5, 3) > 0.5})
        out["clip"].shape   # (5, 64)
    """

    def __init__(self, channels: int, slots: dict[str, int | Sequence[str]], *, heads: int = 4,
                 dropout: float = 0.0):
        if channels % heads:
            raise ValueError(f"AttentionFusion: channels ({channels}) must be divisible by heads ({heads})")
        super().__init__(channels, slots)
        self.heads = heads
        self.dropout = dropout
        self.query = nn.Parameter(torch.empty(len(self.slots), channels))  # row i: the i-th type
        name_rows(self, "query", list(self.slots))
        self._type_index = {t: i for i, t in enumerate(self.slots)}
        self.lin_k = nn.Linear(channels, channels, bias=False)
        self.lin_v = nn.Linear(channels, channels)
        self.lin_out = nn.Linear(channels, channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        nn.init.normal_(self.query, std=1.0 / math.sqrt(self.channels))
        for lin in (self.lin_k, self.lin_v, self.lin_out):
            lin.reset_parameters()

    def _fuse(self, t: str, filled: Tensor) -> Tensor:
        n, s, c = filled.shape
        d = c // self.heads
        if s == 1:   # the weights are 1: no keys, no batched products of 1 x d matrices
            v = self.lin_v(filled.reshape(n, c))
            if self.training and self.dropout > 0:   # heads dropped as a whole, as their weights would be
                alpha = nn.functional.dropout(filled.new_ones(n, self.heads, 1), self.dropout, True)
                v = (v.view(n, self.heads, d) * alpha).view(n, c)
            return self.lin_out(v)
        q = self.query[self._type_index[t]].to(filled.dtype).view(self.heads, d)
        k = self.lin_k(filled).view(n, s, self.heads, d)
        v = self.lin_v(filled).view(n, s, self.heads, d)
        alpha = torch.einsum("nshd,hd->nhs", k, q).mul(d ** -0.5).softmax(dim=-1)
        alpha = nn.functional.dropout(alpha, self.dropout, self.training)
        return self.lin_out(torch.einsum("nhs,nshd->nhd", alpha, v).reshape(n, c))

    def extra_repr(self) -> str:
        return f"heads={self.heads}, dropout={self.dropout}"
