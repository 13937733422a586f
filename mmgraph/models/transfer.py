"""Fine-tuning from a pretrained LinkPredictor: match parameters by meaning, not by position.

Modules of a LinkPredictor are stored by position (node types and features are user strings),
so `state_dict` keys of two models on different graphs do not line up. Here every parameter,
or every row of a parameter stacked over node types, slots or relations, gets an *identity*:
``("feature", type, feature, part)`` for a feature projection, ``("relation", src, rel, dst)``
for a relation vector, ``("head", which, type, part)``, and the key itself for modules that
are already keyed by name (the GNN's per-type and per-edge-type modules). A target entry
loads from the source entry with the same identity and shape; a feature projection of a node
type the source never saw loads from a source projection of the same modality and input
size (transfer between node types).

    report = transfer_weights(model, pretrained)
    print(report.summary())          # loaded 40, transferred 2, new 6, skipped 1 (shape)
    freeze = FreezeSchedule(model, report.loaded_masks, epochs=5)
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from mmgraph.models.link_predictor import LinkPredictor
from mmgraph.nn.conv.rgcn import RGCNConv

__all__ = ["parameter_identities", "identity_names", "transfer_weights", "TransferReport"]

Identity = tuple

# Parameters of a conv stacked over its edge types (first dimension = one row per edge type).
_PER_EDGE_TYPE = {"comp", "k_rel", "v_rel", "p_rel", "relation"}


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


def _feature_of(model: LinkPredictor) -> dict[int, tuple[str, str]]:
    return {i: tf for tf, i in model.projection._feature_index.items()}


def parameter_identities(model: LinkPredictor) -> dict[str, Identity | list[Identity]]:
    """State-dict key -> its identity, or a list of identities, one per row of its first dimension."""
    features = _feature_of(model)
    embedded = {i: t for t, i in model.projection._embedding_index.items()}
    fusion_types = list(model.fusion.slots)
    slots = model.projection.slot_names
    node_types = list(model.schema.node_types)
    out: dict[str, Identity | list[Identity]] = {}
    for key in model.state_dict():
        parts = key.split(".")
        if key == "relation_vectors":
            out[key] = [("relation", *et) for et in model.schema.relations]
        elif parts[0] == "projection" and parts[1] in ("lins", "norms"):
            t, f = features[int(parts[2])]
            out[key] = ("feature", t, f, parts[1], parts[3])
        elif parts[0] == "projection" and parts[1] == "embeddings":
            out[key] = ("embedding", embedded[int(parts[2])])
        elif parts[0] == "fusion" and parts[1] in ("missing", "gate_bias"):
            t = fusion_types[int(parts[2])]
            out[key] = [("fusion", parts[1], t, s) for s in slots[t]]
        elif key == "fusion.query":
            out[key] = [("fusion", "query", t) for t in fusion_types]
        elif parts[0] == "head" and parts[1] in ("lin_mu", "lin_logvar"):
            out[key] = ("head", parts[1], node_types[int(parts[2])], parts[3])
        elif parts[0] == "head":  # the linear head: one Linear per node type
            out[key] = ("head", "lin", node_types[int(parts[1])], parts[2])
        elif parts[0] == "gnn" and parts[1] == "convs" and len(parts) == 4 and _stacked_per_edge_type(model, parts):
            conv = model.gnn.convs[int(parts[2])]
            out[key] = [("gnn", parts[2], parts[3], *et) for et in conv.edge_types]
        else:  # modules keyed by node or edge type name, and shared ones: the key is the identity
            out[key] = ("key", key)
    return out


def identity_names(model: LinkPredictor) -> dict[str, str | list[str]]:
    """`parameter_identities` as plain strings ("feature|clip|sound|lins|weight"), for a run's metadata."""
    return {key: ["|".join(map(str, i)) for i in ident] if isinstance(ident, list) else "|".join(map(str, ident))
            for key, ident in parameter_identities(model).items()}


def _stacked_per_edge_type(model: LinkPredictor, parts: list[str]) -> bool:
    conv = model.gnn.convs[int(parts[2])]
    if parts[3] in _PER_EDGE_TYPE:
        return True
    # R-GCN without bases holds one weight matrix per edge type; with bases they are shared.
    return parts[3] == "weight" and isinstance(conv, RGCNConv) and conv.num_bases is None


def _modality_fallback(target: LinkPredictor, source: LinkPredictor, ident: Identity) -> Identity | None:
    """The identity of a source projection of the same modality and input size, for a new node type."""
    if ident[0] != "feature" or ident[1] in source.schema.node_types:
        return None
    t, f = ident[1], ident[2]
    modality, dim = target.schema.feature_modalities[t][f], target.schema.feature_dims[t][f]
    for ts in source.schema.node_types:
        for fs, mod in source.schema.feature_modalities.get(ts, {}).items():
            if mod == modality and source.schema.feature_dims[ts][fs] == dim:
                return ("feature", ts, fs, *ident[3:])
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
        value = tgt_state[key]
        mask = torch.zeros(value.shape, dtype=torch.bool)
        rows = ident if isinstance(ident, list) else [None]
        for i, row_ident in enumerate(rows):
            name = key if row_ident is None else f"{key}[{'|'.join(map(str, row_ident[1:]))}]"
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
