"""Turn a built graph into what training and evaluation need: splits, filters, message edges."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from mmgraph.data.graph import edge_key
from mmgraph.data.knn import knn_records
from mmgraph.data.naming import knn_feature
from mmgraph.data.true_edges import FilterIndex
from mmgraph.errors import InputError
from mmgraph.train.message_passing import message_passing_edges
from mmgraph.train.splits import EdgeSplit, split_edges

EdgeType = tuple[str, str, str]


@dataclass
class PreparedGraph:
    """A graph with its splits fixed. Message passing only ever sees training edges."""

    graph: HeteroData
    relations: list[EdgeType]                   # the scored relations
    edge_index: dict[EdgeType, Tensor]          # every stored edge of every relation
    splits: dict[EdgeType, EdgeSplit]           # edge positions per split, per relation
    x_dict: dict[str, dict[str, Tensor]]
    mask_dict: dict[str, dict[str, Tensor]]
    num_nodes: dict[str, int]
    filters: dict[EdgeType, FilterIndex]        # all true edges (train+valid+test): evaluation
    train_filters: dict[EdgeType, FilterIndex]  # training edges only: the training loss

    @property
    def train_index(self) -> dict[EdgeType, Tensor]:
        return {et: s.train for et, s in self.splits.items()}

    def message_edges(self, keep: dict[EdgeType, Tensor] | None = None) -> dict[EdgeType, Tensor]:
        """Message-passing edges (reverse types explicit) from training edges, or the given subset."""
        return message_passing_edges(self.edge_index, keep if keep is not None else self.train_index,
                                     add_reverse=True)

    def message_edge_types(self) -> list[EdgeType]:
        return list(self.message_edges().keys())

    def split_edges_of(self, et: EdgeType, split: str) -> Tensor:
        """[2, E] edges of relation `et` in split 'train' | 'valid' | 'test'."""
        return self.edge_index[et][:, getattr(self.splits[et], split)]


def feature_tensors(graph: HeteroData) -> tuple[dict, dict]:
    """x_dict {type: {feature: [N, d]}} and mask_dict {type: {feature: [N]}} from a built graph."""
    meta = getattr(graph, "mmgraph", None) or {}
    x_dict: dict[str, dict[str, Tensor]] = {}
    mask_dict: dict[str, dict[str, Tensor]] = {}
    for node_type in graph.node_types:
        names = list((meta.get("features") or {}).get(node_type, {}))
        x_dict[node_type] = {n: graph[node_type][n].float() for n in names}
        mask_dict[node_type] = {n: graph[node_type][f"{n}_mask"].bool() for n in names}
    return x_dict, mask_dict


def feature_derived_edge_types(graph: HeteroData) -> set[EdgeType]:
    """The kNN relations `(t, similar_NAME, t)` that the builder computed from feature NAME of t."""
    meta = getattr(graph, "mmgraph", None) or {}
    recorded = knn_records(meta)
    if "knn" in meta:  # built with the record: it is the whole list
        return {et for et in graph.edge_types if et in recorded}
    features = meta.get("features", {})  # built before: recognise them by name
    return {et for et in graph.edge_types if knn_feature(et) in features.get(et[0], {})}


def resolve_relations(graph: HeteroData, names: tuple[str, ...] | list[str]) -> list[EdgeType]:
    """Relation names ('says' or 'clip|says|word') -> edge types; empty means every relation."""
    stored = [et for et in graph.edge_types if graph[et].num_edges > 0]
    if not names:
        return stored
    chosen = []
    for name in names:
        hits = [et for et in stored if name in (et[1], edge_key(et))]
        if not hits:
            known = sorted({et[1] for et in stored})
            raise InputError(f"--relations: no relation {name!r} in the graph (relations: {known})")
        chosen += [et for et in hits if et not in chosen]
    return chosen


def prepare_graph(graph: HeteroData, *, relations=(), split_ratios=(0.85, 0.05, 0.10),
                  seed: int = 0, splits: dict[EdgeType, EdgeSplit] | None = None,
                  use_features: bool = True, inductive: float = 0.0) -> PreparedGraph:
    """Fix the splits (the graph's own split column where it has one, else a seeded random one).

    `inductive > 0` then holds that share of the scored relations' source nodes out of the
    training graph (`mmgraph.train.inductive.hold_out_nodes`); given `splits` are used as they are.
    """
    scored = resolve_relations(graph, relations)
    generator = torch.Generator().manual_seed(seed)
    edge_index = {et: graph[et].edge_index.long() for et in graph.edge_types if graph[et].num_edges > 0}
    if not use_features:  # the ablation drops what the media tell, kNN relations built from them too
        derived = feature_derived_edge_types(graph)
        scored = [et for et in scored if et not in derived]
        edge_index = {et: ei for et, ei in edge_index.items() if et not in derived}
    num_nodes = {t: int(graph[t].num_nodes) for t in graph.node_types}
    if splits is None:
        splits = {}
        for et, ei in edge_index.items():
            given = getattr(graph[et], "split", None)
            if et not in scored and given is None:
                # Never scored, so never a leak: every edge of a message-only relation carries messages.
                every = torch.arange(ei.size(1))
                splits[et] = EdgeSplit(every, every[:0], every[:0])
            else:
                splits[et] = split_edges(ei.size(1), split=given, ratios=split_ratios, generator=generator)
        if inductive > 0:
            from mmgraph.train.inductive import hold_out_nodes

            _, splits = hold_out_nodes(edge_index, splits, scored, num_nodes, fraction=inductive,
                                       keep=frozenset(feature_derived_edge_types(graph)), generator=generator)
    filters, train_filters = {}, {}
    for et in scored:
        ei = edge_index[et]
        n_src, n_dst = num_nodes[et[0]], num_nodes[et[2]]
        filters[et] = FilterIndex.from_edges(ei, n_src, n_dst)
        train_filters[et] = FilterIndex.from_edges(ei[:, splits[et].train], n_src, n_dst)
    x_dict, mask_dict = feature_tensors(graph)
    if not use_features:
        x_dict, mask_dict = {t: {} for t in x_dict}, {t: {} for t in mask_dict}
    return PreparedGraph(graph=graph, relations=scored, edge_index=edge_index, splits=splits,
                         x_dict=x_dict, mask_dict=mask_dict, num_nodes=num_nodes,
                         filters=filters, train_filters=train_filters)


def splits_to_plain(splits: dict[EdgeType, EdgeSplit]) -> dict[str, dict[str, Tensor]]:
    """Splits as {"src|rel|dst": {"train": idx, ...}} for a weights_only checkpoint."""
    return {edge_key(et): {"train": s.train, "valid": s.valid, "test": s.test} for et, s in splits.items()}


def splits_from_plain(plain: dict[str, dict[str, Tensor]]) -> dict[EdgeType, EdgeSplit]:
    from mmgraph.data.graph import parse_edge_key

    return {parse_edge_key(k): EdgeSplit(v["train"], v["valid"], v["test"]) for k, v in plain.items()}
