"""Edge-type string keys and a short text summary of a built graph."""
from __future__ import annotations

from mmgraph.errors import InputError

EdgeType = tuple[str, str, str]

_SEP = "|"


def edge_key(edge_type: EdgeType) -> str:
    """`("clip", "says", "word")` -> `"clip|says|word"`, the form used in JSON files."""
    if len(edge_type) != 3 or any(_SEP in part for part in edge_type):
        raise InputError(f"edge type {edge_type!r}: expected (source, relation, target) without '|'")
    return _SEP.join(edge_type)


def parse_edge_key(key: str) -> EdgeType:
    """`"clip|says|word"` -> `("clip", "says", "word")`; the inverse of `edge_key`."""
    parts = str(key).split(_SEP)
    if len(parts) != 3 or not all(parts):
        raise InputError(f"edge type {key!r}: expected 'SOURCE|RELATION|TARGET'")
    return parts[0], parts[1], parts[2]


def graph_summary(graph) -> str:
    """A few lines: node counts with feature dims and coverage, edge counts with their splits."""
    meta = getattr(graph, "mmgraph", None) or {}
    name = meta.get("name", "graph")
    lines = [f"{name}: {len(graph.node_types)} node types, {len(graph.edge_types)} edge types"]
    features = meta.get("features", {})
    for node_type in graph.node_types:
        store = graph[node_type]
        parts = []
        for feat, info in features.get(node_type, {}).items():
            mask = store[feat + "_mask"]
            present = f"{int(mask.sum())}/{mask.numel()} present"
            parts.append(f"{feat} ({info['modality']}, {info['dim']}-d, {present})")
        desc = ", ".join(parts) if parts else "no features"
        lines.append(f"  {node_type}: {store.num_nodes} nodes; {desc}")
    for edge_type in graph.edge_types:
        store = graph[edge_type]
        count = store.edge_index.size(1)
        split = ""
        if "split" in store:
            counts = [int((store.split == i).sum()) for i in range(3)]
            split = f" (train {counts[0]}, valid {counts[1]}, test {counts[2]})"
        lines.append(f"  {edge_key(edge_type)}: {count} edges{split}")
    return "\n".join(lines)
