"""GraphSchema: what a model needs to know about its graph, without the graph."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import torch

from mmgraph.errors import InputError

__all__ = ["GraphSchema", "EdgeType"]

EdgeType = tuple[str, str, str]


def _edge_type(value: Iterable[str], where: str) -> EdgeType:
    et = tuple(value)
    if len(et) != 3 or not all(isinstance(p, str) for p in et):
        raise InputError(f"{where}: an edge type is (source type, relation, target type), got {value!r}")
    return et  # type: ignore[return-value]


@dataclass(frozen=True)
class GraphSchema:
    """Node types, message-passing edge types (reverse ones explicit), scored relations, features.

    Example::

        says = ("clip", "says", "word")
        schema = GraphSchema.from_graph(graph, [says], [says, ("word", "rev_says", "clip")])
        schema.feature_dims   # {"clip": {"sound": 768}, "word": {"name": 384}}
    """

    node_types: tuple[str, ...]
    edge_types: tuple[EdgeType, ...]
    relations: tuple[EdgeType, ...]
    feature_dims: dict[str, dict[str, int]]
    feature_modalities: dict[str, dict[str, str]]
    num_nodes: dict[str, int]

    def __post_init__(self):
        object.__setattr__(self, "node_types", tuple(self.node_types))
        object.__setattr__(self, "edge_types", tuple(_edge_type(e, "schema") for e in self.edge_types))
        object.__setattr__(self, "relations", tuple(_edge_type(e, "schema") for e in self.relations))
        types = set(self.node_types)
        for kind, ets in (("edge type", self.edge_types), ("relation", self.relations)):
            for et in ets:
                if et[0] not in types or et[2] not in types:
                    raise InputError(f"schema: {kind} {'|'.join(et)} joins node types that the graph does "
                                     f"not have (it has {', '.join(self.node_types)})")
        for name, table in (("feature_dims", self.feature_dims), ("num_nodes", self.num_nodes)):
            missing = types - set(table)
            if missing:
                raise InputError(f"schema: {name} lacks node type(s) {sorted(missing)}")
        if len(set(self.relations)) != len(self.relations):
            raise InputError("schema: a relation is listed twice")

    @property
    def metadata(self) -> tuple[list[str], list[EdgeType]]:
        """PyG-style ``(node_types, edge_types)`` for message passing."""
        return list(self.node_types), list(self.edge_types)

    @classmethod
    def from_graph(cls, graph, relations: Iterable[Iterable[str]],
                   message_edge_types: Iterable[Iterable[str]]) -> "GraphSchema":
        """Read node counts and features from a `HeteroData` built by `mmgraph.data`.

        Features are the ones `graph.mmgraph["features"]` lists (with their modality); a graph
        without that record contributes every float ``[N, dim]`` tensor with a ``NAME_mask``.
        """
        info = getattr(graph, "mmgraph", None)
        recorded = info.get("features", {}) if isinstance(info, Mapping) else None
        feature_dims: dict[str, dict[str, int]] = {}
        modalities: dict[str, dict[str, str]] = {}
        for t in graph.node_types:
            store = graph[t]
            if recorded is not None:
                names = list(recorded.get(t, {}))
            else:
                names = [k for k in store.keys() if f"{k}_mask" in store and torch.is_tensor(store[k])
                         and store[k].dim() == 2]
            feature_dims[t], modalities[t] = {}, {}
            for name in names:
                if name not in store or f"{name}_mask" not in store:
                    raise InputError(f"graph: node type {t!r} lists feature {name!r} but stores no "
                                     f"{name!r} / {name + '_mask'!r} tensors")
                feature_dims[t][name] = int(store[name].size(-1))
                info_f = recorded[t][name] if recorded is not None else {}
                modalities[t][name] = str(info_f.get("modality", "vector"))
        num_nodes = {t: int(graph[t].num_nodes) for t in graph.node_types}
        return cls(tuple(graph.node_types),
                   tuple(_edge_type(e, "message edge types") for e in message_edge_types),
                   tuple(_edge_type(r, "relations") for r in relations), feature_dims, modalities, num_nodes)

    def to_dict(self) -> dict[str, Any]:
        """Plain lists and dicts (JSON and ``torch.load(weights_only=True)`` safe)."""
        return {
            "node_types": list(self.node_types),
            "edge_types": [list(e) for e in self.edge_types],
            "relations": [list(r) for r in self.relations],
            "feature_dims": {t: dict(f) for t, f in self.feature_dims.items()},
            "feature_modalities": {t: dict(f) for t, f in self.feature_modalities.items()},
            "num_nodes": dict(self.num_nodes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "GraphSchema":
        keys = {"node_types", "edge_types", "relations", "feature_dims", "feature_modalities", "num_nodes"}
        if set(data) != keys:
            raise InputError(f"schema: expected keys {sorted(keys)}, got {sorted(data)}")
        return cls(tuple(data["node_types"]), tuple(tuple(e) for e in data["edge_types"]),
                   tuple(tuple(r) for r in data["relations"]),
                   {t: {f: int(d) for f, d in feats.items()} for t, feats in data["feature_dims"].items()},
                   {t: dict(m) for t, m in data["feature_modalities"].items()},
                   {t: int(n) for t, n in data["num_nodes"].items()})
