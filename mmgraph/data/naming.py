"""The naming conventions of derived relations, defined once and parsed back here only.

- the reverse of a relation `(s, r, d)` that carries messages the other way is
  `(d, "rev_" + r, s)` (`reverse_edge_type`, `is_reverse`);
- the kNN relation the builder computes from feature NAME of node type t is
  `(t, "similar_" + NAME, t)` (`knn_edge_type`, `knn_feature`);
- small images of feature NAME left to the default encoder are NAME (their pixels) and
  NAME + "_imagenet" (the ImageNet network's features of the same files) (`network_view_name`).

It lives in `mmgraph.data`, the lowest package that names relations (the builder makes the
kNN ones); everything above imports it from here.
"""
from __future__ import annotations

EdgeType = tuple[str, str, str]

__all__ = ["REVERSE_PREFIX", "KNN_PREFIX", "reverse_relation", "reverse_edge_type", "is_reverse",
           "knn_relation_name", "knn_edge_type", "knn_feature",
           "NETWORK_VIEW_SUFFIX", "network_view_name"]

REVERSE_PREFIX = "rev_"
KNN_PREFIX = "similar_"
NETWORK_VIEW_SUFFIX = "_imagenet"


def reverse_relation(rel: str) -> str:
    """`"says" -> "rev_says"`."""
    return REVERSE_PREFIX + rel


def reverse_edge_type(edge_type: EdgeType) -> EdgeType:
    """`(src, rel, dst) -> (dst, "rev_" + rel, src)`."""
    src, rel, dst = edge_type
    return (dst, reverse_relation(rel), src)


def is_reverse(edge_type: EdgeType | str) -> bool:
    """Whether an edge type (or a relation name) is named as the reverse of another."""
    rel = edge_type if isinstance(edge_type, str) else edge_type[1]
    return rel.startswith(REVERSE_PREFIX)


def knn_relation_name(feature: str) -> str:
    """`"sound" -> "similar_sound"`: the relation of the kNN edges on feature `sound`."""
    return KNN_PREFIX + feature


def knn_edge_type(node_type: str, feature: str) -> EdgeType:
    """`(t, "similar_" + feature, t)`."""
    return (node_type, knn_relation_name(feature), node_type)


def knn_feature(edge_type: EdgeType) -> str | None:
    """The feature a kNN edge type is named after (`(t, "similar_x", t) -> "x"`), else None.

    A name alone does not prove the builder made the edges: callers also check that the node
    type has that feature (or read `graph.mmgraph["knn"]`).
    """
    src, rel, dst = edge_type
    if src != dst or not rel.startswith(KNN_PREFIX):
        return None
    return rel[len(KNN_PREFIX):]


def network_view_name(feature: str) -> str:
    """`"picture" -> "picture_imagenet"`: the ImageNet-network column built beside small images' pixels."""
    return feature + NETWORK_VIEW_SUFFIX
