r"""Project each node's features (one per modality) into tokens of a common size."""
from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor, nn

from mmgraph.errors import InputError
from mmgraph.nn.named import NamedModuleDict

__all__ = ["FeatureProjection", "LEARNED_SLOT"]

#: Name of the slot that holds a node's learned embedding (after its feature slots).
LEARNED_SLOT = "<learned>"
# Below this width LayerNorm would erase the feature (one numeric column normalises to 0);
# such features come standardised from their encoder already.
_MIN_NORM_DIM = 8


class FeatureProjection(nn.Module):
    r"""One projection per (node type, feature) into ``channels``, plus learned node embeddings.

    For node :math:`v` of type :math:`t` and feature :math:`f` with input :math:`x_{v,f}`:

    .. math::
        s_{v,f} = W_{t,f}\, \mathrm{LN}_{t,f}(x_{v,f}) + b_{t,f}, \qquad
        s_{v,\mathrm{learned}} = E_t[\mathrm{id}(v)]

    A slot is present when the feature's mask is true (learned slots: when the node has an id,
    see ``n_id_dict``); absent slots are zeros and ``False`` in the token mask. Types without
    features, and those in ``learned_types``, get an embedding table :math:`E_t` as their last
    slot. In training, ``feature_dropout`` masks each present slot with that probability, but
    always keeps one present slot per node, so the model learns to cope with missing modalities.

    Args:
        feature_dims: ``{type: {feature: dim}}``; a type may map to ``{}``.
        channels: size of every token.
        num_nodes: ``{type: count}``, needed for every type with a learned slot.
        learned_types: types that get a learned embedding in addition to their features.
        feature_dropout: probability of dropping a present slot (training only).
        dropout: dropout on the tokens.
        embedding_std: standard deviation of the learned embeddings at initialisation (1: the
            scale of a normalised projection; pure embedding models such as ComplEx-N3 start
            near 0, 1e-3 in Lacroix et al.'s code).

    Shapes:
        - input: ``x_dict {t: {f: [N_t, dim_f]}}``, ``mask_dict {t: {f: [N_t] bool}}``,
          optional ``n_id_dict {t: [N_t] long}`` (global rows of a subgraph; negative = a new
          node without a learned embedding).
        - output: ``tokens {t: [N_t, S_t, channels]}``, ``token_mask {t: [N_t, S_t] bool}`` with
          slots in ``slot_names[t]`` order.

    Example::

        proj = FeatureProjection({"clip": {"sound": 512}, "word": {}}, 64, num_nodes={"word": 10})
        present = {"clip": {"sound": torch.ones(5, dtype=torch.bool)}}
        tokens, mask = proj({"clip": {"sound": torch.randn(5, 512)}}, present)
        tokens["clip"].shape, tokens["word"].shape   # (5, 1, 64), (10, 1, 64)
    """

    def __init__(self, feature_dims: dict[str, dict[str, int]], channels: int, *,
                 num_nodes: dict[str, int] | None = None, learned_types: Iterable[str] = (),
                 feature_dropout: float = 0.0, dropout: float = 0.0, embedding_std: float = 1.0):
        super().__init__()
        if not 0.0 <= feature_dropout < 1.0:
            raise ValueError(f"feature_dropout must be in [0, 1), got {feature_dropout}")
        if embedding_std <= 0:
            raise ValueError(f"embedding_std must be > 0, got {embedding_std}")
        learned_types = set(learned_types)
        unknown = sorted(learned_types - set(feature_dims))
        if unknown:
            raise InputError(f"learned embeddings asked for unknown node types {unknown}")
        self.feature_dims = {t: dict(feats) for t, feats in feature_dims.items()}
        self.channels = channels
        self.feature_dropout = feature_dropout
        self.dropout = dropout
        self.embedding_std = embedding_std
        # Keyed by (type, feature) and type; before, lists by position (read back by `legacy`).
        self.norms = NamedModuleDict(legacy="position")
        self.lins = NamedModuleDict(legacy="position")
        for t, feats in self.feature_dims.items():
            for f, dim in feats.items():
                self.norms[(t, f)] = nn.LayerNorm(dim) if dim >= _MIN_NORM_DIM else nn.Identity()
                self.lins[(t, f)] = nn.Linear(dim, channels)
        self.embeddings = NamedModuleDict(legacy="position")
        for t, feats in self.feature_dims.items():
            if feats and t not in learned_types:
                continue
            count = (num_nodes or {}).get(t)
            if count is None:
                raise InputError(f"node type {t!r} needs a learned embedding, but num_nodes does not "
                                 f"give its size")
            self.embeddings[t] = nn.Embedding(count, channels)
        self.slot_names = {t: list(feats) + ([LEARNED_SLOT] if t in self.embeddings else [])
                           for t, feats in self.feature_dims.items()}
        self.reset_parameters()

    @property
    def num_slots(self) -> dict[str, int]:
        return {t: len(names) for t, names in self.slot_names.items()}

    def reset_parameters(self) -> None:
        for norm in self.norms.values():
            if isinstance(norm, nn.LayerNorm):
                norm.reset_parameters()
        for lin in self.lins.values():
            lin.reset_parameters()
        for emb in self.embeddings.values():
            nn.init.normal_(emb.weight, std=self.embedding_std)

    def _num_rows(self, t: str, x: dict[str, Tensor], n_id: Tensor | None) -> int:
        read = [f for f in self.feature_dims[t] if f in x]   # features it does not read say nothing
        if read:
            return x[read[0]].size(0)
        if n_id is not None:
            return n_id.numel()
        return self.embeddings[t].num_embeddings

    def _learned_slot(self, t: str, n: int, n_id: Tensor | None) -> tuple[Tensor, Tensor]:
        table = self.embeddings[t].weight
        device = table.device
        if n_id is None:
            if n != table.size(0):
                raise InputError(f"node type {t!r}: {n} rows given but the model has {table.size(0)} nodes; "
                                 f"pass n_id_dict for a subgraph")
            return table, torch.ones(n, dtype=torch.bool, device=device)
        n_id = n_id.to(device)
        if n_id.numel() != n:
            raise InputError(f"node type {t!r}: n_id_dict gives {n_id.numel()} ids for {n} rows")
        if n_id.numel() and int(n_id.max()) >= table.size(0):
            raise InputError(f"node type {t!r}: node id {int(n_id.max())} is out of range (the model has "
                             f"{table.size(0)} nodes)")
        known = n_id >= 0
        if n_id.device.type == "cpu" and bool(known.all()):   # every id known: the rows as they are
            return table[n_id], known
        return table[n_id.clamp_min(0)] * known[:, None].to(table.dtype), known

    def _drop_slots(self, mask: Tensor) -> Tensor:
        """Drop present slots at random, keeping one random present slot per node that has any."""
        drop = (torch.rand(mask.shape, device=mask.device) < self.feature_dropout) & mask
        keep_score = torch.rand(mask.shape, device=mask.device).masked_fill(~mask, -1.0)
        keep = torch.zeros_like(mask).scatter_(1, keep_score.argmax(1, keepdim=True), True) & mask
        return mask & (~drop | keep)

    def forward(self, x_dict: dict[str, dict[str, Tensor]], mask_dict: dict[str, dict[str, Tensor]],
                n_id_dict: dict[str, Tensor] | None = None) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        tokens_dict, mask_out = {}, {}
        for t, feats in self.feature_dims.items():
            x_t, m_t = x_dict.get(t, {}), mask_dict.get(t, {})
            n_id = (n_id_dict or {}).get(t)
            missing = [f for f in feats if f not in x_t or f not in m_t]
            if missing:
                raise InputError(f"node type {t!r}: feature(s) {missing} missing from the input")
            n = self._num_rows(t, x_t, n_id)
            slots, masks = [], []
            for f in feats:
                x, m = x_t[f], m_t[f].to(torch.bool)
                if x.size(0) != n or m.size(0) != n:
                    raise InputError(f"node type {t!r}, feature {f!r}: {x.size(0)} rows and {m.size(0)} mask "
                                     f"entries, expected {n}")
                # Zero absent rows before and after: whatever they hold reaches neither output nor grads
                # (on CPU, where asking costs no device sync, skipped when every row is present).
                absent = None if m.device.type == "cpu" and bool(m.all()) else ~m[:, None]
                x = x if absent is None else x.masked_fill(absent, 0.0)
                token = self.lins[(t, f)](self.norms[(t, f)](x))
                slots.append(token if absent is None else token.masked_fill(absent, 0.0))
                masks.append(m)
            if t in self.embeddings:
                emb, known = self._learned_slot(t, n, n_id)
                slots.append(emb)
                masks.append(known)
            tokens = slots[0].unsqueeze(1) if len(slots) == 1 else torch.stack(slots, dim=1)   # one slot: no copy
            mask = torch.stack(masks, dim=1)
            if self.training and self.feature_dropout > 0:
                dropped = self._drop_slots(mask)
                # a node's last present slot is never dropped, so often nothing is (one slot a type)
                if mask.device.type != "cpu" or not torch.equal(dropped, mask):
                    tokens = tokens.masked_fill(~dropped[..., None], 0.0)
                mask = dropped
            tokens_dict[t] = nn.functional.dropout(tokens, self.dropout, self.training)
            mask_out[t] = mask
        return tokens_dict, mask_out

    def __repr__(self) -> str:
        slots = {t: len(s) for t, s in self.slot_names.items()}
        return (f"{type(self).__name__}(slots={slots}, channels={self.channels}, "
                f"feature_dropout={self.feature_dropout}, dropout={self.dropout})")
