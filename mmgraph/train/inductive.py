"""Cold start in training: nodes held out of the training graph, and edge-less supervision steps.

A brand-new item (`predict --items`) reaches the model with its features and no edge at all. A
model trained only on nodes embedded inside the graph (messages from their neighbours) never
learnt that case. Two pure functions make training see it:

- `hold_out_nodes` (TrainConfig `inductive`): a share of the source nodes of each scored
  relation leaves the training graph for good: their training edges become validation edges,
  so early stopping watches how well nodes are linked from their features alone, and no edge
  touching them, of any relation, is a training or message edge.
- `cold_start_messages` (TrainConfig `cold_start_ratio`): in each epoch, a share of the nodes
  whose edges are supervised loses every message edge, so their supervised links are predicted
  from their own features (and, where kept, their feature-derived kNN edges) only.

Both leave the `keep` edge types whole: the kNN relations the builder derives from features,
which `mmgraph.eval.cold_start` gives a brand-new item too.
"""
from __future__ import annotations

import torch
from torch import Tensor

from mmgraph.errors import InputError
from mmgraph.train.splits import EdgeSplit, inductive_split

EdgeType = tuple[str, str, str]

__all__ = ["hold_out_nodes", "drop_node_edges", "cold_start_messages"]


def _check_share(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise InputError(f"{name} must lie in [0, 1), got {value}")


def drop_node_edges(positions: Tensor, edge_index: Tensor, edge_type: EdgeType,
                    nodes: dict[str, Tensor]) -> Tensor:
    """The edge positions among `positions` whose ends are none of `nodes[type]` (sorted order kept)."""
    src_type, _, dst_type = edge_type
    ends = edge_index[:, positions]
    keep = torch.ones(positions.numel(), dtype=torch.bool, device=positions.device)
    if src_type in nodes:
        keep &= ~torch.isin(ends[0], nodes[src_type].to(ends.device))
    if dst_type in nodes:
        keep &= ~torch.isin(ends[1], nodes[dst_type].to(ends.device))
    return positions[keep]


def hold_out_nodes(edge_index: dict[EdgeType, Tensor], splits: dict[EdgeType, EdgeSplit],
                   relations: list[EdgeType], num_nodes: dict[str, int], *, fraction: float,
                   keep: frozenset[EdgeType] = frozenset(), generator: torch.Generator | None = None
                   ) -> tuple[dict[str, Tensor], dict[EdgeType, EdgeSplit]]:
    """Hold a share of each scored relation's source nodes out of the training graph.

    Per source node type, `fraction` of the nodes with training edges in the scored relations of
    that type are drawn (`inductive_split` over those edges). The scored training edges they are
    the source of move to the validation split; every other edge touching them (any relation,
    either end) leaves the training positions, so no message and no supervision ever reaches them. Valid and test
    edges are left where they were. Edge types in `keep` are left whole: the kNN relations the
    builder derives from features, which a new item gets too (`mmgraph.eval.cold_start`).

    Returns `(held_out {type: sorted node ids}, new splits)`.

    Example::

        held, splits = hold_out_nodes(edge_index, splits, [("clip", "says", "word")],
                                      {"clip": 480, "word": 10}, fraction=0.2, generator=g)
    """
    _check_share("inductive", fraction)
    held: dict[str, Tensor] = {}
    for src_type in dict.fromkeys(et[0] for et in relations):
        rels = [et for et in relations if et[0] == src_type]
        train_edges = torch.cat([edge_index[et][:, splits[et].train] for et in rels], dim=1)
        nodes, _ = inductive_split(train_edges, num_nodes[src_type], held_out_fraction=fraction,
                                   valid_share=1.0, generator=generator)
        held[src_type] = nodes
    out = {}
    for et, split in splits.items():
        train = split.train if et in keep else drop_node_edges(split.train, edge_index[et], et, held)
        valid = split.valid
        if et in relations and et[0] in held:
            moved = split.train[torch.isin(edge_index[et][0, split.train], held[et[0]])]
            valid = torch.cat([valid, moved]).sort().values
        out[et] = EdgeSplit(train, valid, split.test)
    return held, out


def cold_start_messages(message_idx: dict[EdgeType, Tensor], supervision: dict[EdgeType, Tensor],
                        edge_index: dict[EdgeType, Tensor], *, ratio: float,
                        keep: frozenset[EdgeType] = frozenset(), generator: torch.Generator | None = None) -> tuple[dict[EdgeType, Tensor], dict[str, Tensor]]:
    """Drop every message edge of a random `ratio` share of the supervised source nodes.

    `supervision` maps each scored relation to its supervised edge positions in this step;
    `message_idx` maps every edge type to its message positions. Returns the message positions
    without any edge touching the chosen nodes (edge types in `keep`, the feature-derived kNN
    relations, excepted), and the chosen nodes per type: their supervised links are then scored
    from embeddings computed from their features (and feature neighbours) alone.

    Example::

        msg, cold = cold_start_messages(msg, sup, prepared.edge_index, ratio=0.5, generator=g)
    """
    _check_share("cold_start_ratio", ratio)
    if ratio == 0.0:
        return message_idx, {}
    sources: dict[str, list[Tensor]] = {}
    for et, positions in supervision.items():
        sources.setdefault(et[0], []).append(edge_index[et][0, positions])
    cold = {}
    for node_type, parts in sources.items():
        nodes = torch.cat(parts).unique()
        count = int(round(ratio * nodes.numel()))
        cold[node_type] = nodes[torch.randperm(nodes.numel(), generator=generator)[:count]].sort().values
    kept = {et: pos if et in keep else drop_node_edges(pos, edge_index[et], et, cold)
            for et, pos in message_idx.items()}
    return kept, cold
