"""Fine-tuning from a pretrained LinkPredictor: match parameters by name, not by position.

Every module of a LinkPredictor that holds per-type, per-feature or per-relation parameters
keeps them by name (`mmgraph.nn.named`), and parameters stacked over names (relation vectors,
HGT's per-relation matrices, ...) declare which name each row belongs to. So every state-dict
entry, or every row of a stacked one, has an *identity* `(module path, name, rest)`, e.g.
``("projection.lins", ("clip", "sound"), "weight")`` or ``("", "relation_vectors", ("clip",
"says", "word"))``; two models on different graphs share the identities of what they share. A
target entry loads from the source entry with the same identity and shape; a feature
projection of a node type the source never saw loads from a source projection of the same
modality and input size (transfer between node types).

    report = transfer_weights(model, pretrained)
    print(report.summary())          # loaded 40, transferred 2, new 6, skipped 1 (shape)
    freeze = FreezeSchedule(model, report.loaded_masks, epochs=5)
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from mmgraph.models.link_predictor import LinkPredictor
from mmgraph.nn.named import parameter_names

__all__ = ["parameter_identities", "identity_names", "transfer_weights", "TransferReport"]

Identity = tuple

# The modules of the feature projections: (path, (type, feature), rest).
_PROJECTIONS = ("projection.lins", "projection.norms")


@dataclass
class TransferReport:
    """What `transfer_weights` did, per state_dict entry (``key`` or ``key[row]``) of the target."""

    loaded: list[str] = field(default_factory=list)          # same identity and shape
    transferred: list[str] = field(default_factory=list)     # from another node type's projection
    new: list[str] = field(default_factory=list)             # nothing in the source: initialised
    skipped: list[str] = field(default_factory=list)         # found, but of another shape
    loaded_masks: dict[str, Tensor] = field(default_factory=dict)  # key -> bool mask of loaded entries

    def summary(self) -> str:
        return (f"loaded {len(self.loaded)}, transferred {len(self.transferred)} from another node type, "
                f"new {len(self.new)}, skipped {len(self.skipped)} (shape mismatch)")

    def to_dict(self) -> dict[str, list[str]]:
        return {"loaded": self.loaded, "transferred": self.transferred, "new": self.new, "skipped": self.skipped}


def parameter_identities(model: LinkPredictor) -> dict[str, Identity | list[Identity]]:
    """State-dict key -> its identity, or a list of identities, one per row of its first dimension."""
    return parameter_names(model)


def _flat(ident: Identity) -> list[str]:
    return [str(x) for part in ident if part not in ("", None)
            for x in (part if isinstance(part, tuple) else (part,))]


def identity_names(model: LinkPredictor) -> dict[str, str | list[str]]:
    """`parameter_identities` as plain strings ("projection.lins|clip|sound|weight"), for a run's metadata."""
    return {key: ["|".join(_flat(i)) for i in ident] if isinstance(ident, list) else "|".join(_flat(ident))
            for key, ident in parameter_identities(model).items()}


def _modality_fallback(target: LinkPredictor, source: LinkPredictor, ident: Identity) -> Identity | None:
    """The identity of a source projection of the same modality and input size, for a new node type."""
    path, name, rest = ident
    if path not in _PROJECTIONS or name[0] in source.schema.node_types:
        return None
    t, f = name
    modality, dim = target.schema.feature_modalities[t][f], target.schema.feature_dims[t][f]
    for ts in source.schema.node_types:
        for fs, mod in source.schema.feature_modalities.get(ts, {}).items():
            if mod == modality and source.schema.feature_dims[ts][fs] == dim:
                return (path, (ts, fs), rest)
    return None


@torch.no_grad()
def transfer_weights(target: LinkPredictor, source: LinkPredictor) -> TransferReport:
    """Copy into `target` every parameter (or row) of `source` with the same identity and shape.

    Everything else keeps its initialisation. Returns the report with a bool mask per key of
    the entries that were loaded (for :class:`FreezeSchedule`).
    """
    src_state, tgt_state = source.state_dict(), target.state_dict()
    where: dict[Identity, tuple[str, int | None]] = {}
    for key, ident in parameter_identities(source).items():
        if isinstance(ident, list):
            where.update({row: (key, i) for i, row in enumerate(ident)})
        else:
            where[ident] = (key, None)
    report = TransferReport()

    def fetch(ident: Identity) -> tuple[Tensor | None, str]:
        found, how = where.get(ident), "loaded"
        if found is None:
            alt = _modality_fallback(target, source, ident)
            found, how = (where.get(alt), "transferred") if alt is not None else (None, how)
        if found is None:
            return None, "new"
        key, row = found
        return (src_state[key] if row is None else src_state[key][row]), how

    for key, ident in parameter_identities(target).items():
        if key.startswith(LinkPredictor.GRAPH_STATE):   # this graph's degrees, weights fitted after training
            continue
        value = tgt_state[key]
        mask = torch.zeros(value.shape, dtype=torch.bool)
        rows = ident if isinstance(ident, list) else [None]
        for i, row_ident in enumerate(rows):
            name = key if row_ident is None else f"{key}[{'|'.join(_flat(row_ident[2:]))}]"
            got, how = fetch(ident if row_ident is None else row_ident)
            dest = value if row_ident is None else value[i]
            if got is not None and got.shape != dest.shape:
                report.skipped.append(f"{name}: {tuple(got.shape)} -> {tuple(dest.shape)}")
                continue
            if got is None:
                report.new.append(name)
                continue
            dest.copy_(got.to(dest.device, dest.dtype))
            (report.loaded if how == "loaded" else report.transferred).append(name)
            if row_ident is None:
                mask.fill_(True)
            else:
                mask[i] = True
        if bool(mask.any()):
            report.loaded_masks[key] = mask
    return report
