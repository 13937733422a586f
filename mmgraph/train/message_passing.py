"""Which edges a GNN may pass messages over: training edges only, reverse types explicit.

Leakage rules enforced here (and property-tested in tests/train/test_message_passing.py):
valid/test edges never carry messages, and neither do their reverses; within a training step
the supervised edges are disjoint from the message-passing ones, so a model cannot read the
answer off the edge it is asked to predict.
"""
from __future__ import annotations

import torch
from torch import Tensor

from mmgraph.data.naming import REVERSE_PREFIX, reverse_edge_type  # noqa: F401 (re-exported)
from mmgraph.errors import InputError

EdgeType = tuple[str, str, str]

__all__ = ["REVERSE_PREFIX", "reverse_edge_type", "message_passing_edges", "disjoint_supervision",
           "epoch_edges"]

def message_passing_edges(edge_index_dict: dict[EdgeType, Tensor],
                          train_idx_dict: dict[EdgeType, Tensor | None], *,
                          add_reverse: bool = True) -> dict[EdgeType, Tensor]:
    """Edge types -> `[2, E_train]` edge_index built only from the given training positions.

    `train_idx_dict` must name every edge type of `edge_index_dict` (a value of None means
    "all edges of this type", for relations that are never evaluated), so no relation's
    held-out edges slip in by omission. With `add_reverse`, each type `(s, r, d)` also gets
    `(d, "rev_" + r, s)` holding the flipped training edges, even when `s == d`.

    Example::

        mp = message_passing_edges({("u", "buys", "i"): ei}, {("u", "buys", "i"): split.train})
        list(mp)   # [("u", "buys", "i"), ("i", "rev_buys", "u")]
    """
    missing = [et for et in edge_index_dict if et not in train_idx_dict]
    extra = [et for et in train_idx_dict if et not in edge_index_dict]
    if missing or extra:
        raise ValueError(f"message_passing_edges: training positions missing for {missing}"
                         f"{'' if not extra else f', given for unknown edge types {extra}'}")
    out: dict[EdgeType, Tensor] = {}
    for et, ei in edge_index_dict.items():
        idx = train_idx_dict[et]
        out[et] = ei if idx is None else ei[:, idx.to(ei.device)]
    if add_reverse:
        for et in list(out):
            rev = reverse_edge_type(et)
            if rev in edge_index_dict:
                raise InputError(f"relation {rev[1]!r} already exists; the reverse of {et} "
                                 f"cannot be named {rev}")
            out[rev] = out[et].flip(0)
    return out


def disjoint_supervision(train_idx: Tensor, *, supervision_ratio: float,
                         generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Split training positions into message-passing and supervision positions, disjoint.

    `round(supervision_ratio * n)` positions (at least one when `n > 0`) are drawn as
    supervision edges, in random order (ready to be batched); the rest, sorted, carry messages.
    Redraw every epoch so that every training edge is supervised in turn.

    Example::

        msg, sup = disjoint_supervision(split.train, supervision_ratio=0.3, generator=g)
        assert not torch.isin(msg, sup).any()
    """
    if not 0.0 < supervision_ratio <= 1.0:
        raise InputError(f"supervision_ratio must lie in (0, 1], got {supervision_ratio}")
    n = train_idx.numel()
    perm = torch.randperm(n, generator=generator).to(train_idx.device)
    n_sup = min(n, max(1, int(round(supervision_ratio * n)))) if n else 0
    supervision = train_idx[perm[:n_sup]]
    message = train_idx[perm[n_sup:]].sort().values
    return message, supervision


def epoch_edges(splits: dict, relations: list[EdgeType], *, supervision_ratio: float,
                generator: torch.Generator | None = None) -> tuple[dict[EdgeType, Tensor], dict[EdgeType, Tensor]]:
    """One epoch's message positions of every edge type and supervision positions of every scored
    relation (`disjoint_supervision` per relation; with ratio 1 every training edge does both,
    for models that pass no messages). `splits` maps edge types to `EdgeSplit`s.

    Example::

        message_idx, supervision = epoch_edges(prepared.splits, prepared.relations, supervision_ratio=0.3)
        edges = prepared.message_edges(message_idx)
    """
    message_idx, supervision = {}, {}
    for et, split in splits.items():
        if et in relations and supervision_ratio < 1.0:
            message_idx[et], supervision[et] = disjoint_supervision(split.train, supervision_ratio=supervision_ratio,
                                                                    generator=generator)
        else:
            message_idx[et] = split.train
            if et in relations:
                supervision[et] = split.train
    return message_idx, supervision
