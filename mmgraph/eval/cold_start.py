"""Brand-new items inside the trained graph: attached by their feature neighbours, then embedded.

A new item has no edges, but where the manifest asked for a kNN relation on one of its features
(`(t, similar_NAME, t)`, built by `mmgraph.data.knn.knn_graph`), the item gets that relation's
edges exactly as the builder would have given them: its k most cosine-similar nodes of the
graph, k the one the builder recorded in `graph.mmgraph["knn"]` (for graphs built before it
was recorded: the relation's mean out-degree). The item is then embedded together with the whole
training graph (messages over the run's training edges plus those new edges), so what the GNN
learnt from neighbours carries over to it. Runs trained with `inductive` / `cold_start_ratio`
saw exactly this situation: nodes that keep only their feature-derived edges.
"""
from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import Tensor

from mmgraph.data.knn import knn_records
from mmgraph.data.naming import knn_feature
from mmgraph.train.message_passing import message_passing_edges

log = logging.getLogger("mmgraph")

EdgeType = tuple[str, str, str]

__all__ = ["derived_relations", "neighbour_count", "attach_neighbours", "embed_in_graph", "join_items"]


def derived_relations(model, node_type: str, features: dict) -> list[tuple[EdgeType, str]]:
    """The model's kNN message relations of `node_type` and the feature each was built from."""
    out = []
    for et in model.schema.edge_types:
        name = knn_feature(tuple(et))
        if et[0] == node_type and name in features:
            out.append((tuple(et), name))
    return out


def neighbour_count(graph, edge_type: EdgeType, edge_index: Tensor) -> int:
    """The k the builder used for kNN relation `edge_type`, as recorded in the graph's metadata.

    Graphs built before the record existed: the relation's mean out-degree, which is k unless
    the feature had fewer than k + 1 present rows.
    """
    record = knn_records(getattr(graph, "mmgraph", None)).get(tuple(edge_type))
    if record is not None:
        return int(record["k"])
    log.info("%s: no kNN record in the graph (built by an older mmgraph); k guessed from its edges",
             "|".join(edge_type))
    return max(1, round(edge_index.size(1) / max(1, edge_index[0].unique().numel())))


def attach_neighbours(x_new: Tensor, mask_new: Tensor, x_graph: Tensor, mask_graph: Tensor, k: int,
                      *, offset: int) -> Tensor:
    """`[2, E]` edges (new item -> its k nearest graph nodes by cosine), new items numbered from `offset`.

    Items or graph nodes whose mask is False get no edge (as in `knn_graph`).
    """
    valid = mask_graph.nonzero().view(-1)
    rows = mask_new.nonzero().view(-1)
    k = min(k, valid.numel())
    if k < 1 or rows.numel() == 0:
        return torch.empty(2, 0, dtype=torch.long)
    sim = F.normalize(x_new[rows].float(), dim=1) @ F.normalize(x_graph[valid].float(), dim=1).T
    nearest = valid[sim.topk(k, dim=1).indices]  # [R, k]
    return torch.stack([(rows + offset).repeat_interleave(k), nearest.reshape(-1)])


@torch.no_grad()
def embed_in_graph(run, node_type: str, x: dict[str, Tensor], mask: dict[str, Tensor], count: int,
                   *, device: torch.device | None = None) -> Tensor | None:
    """Embeddings `[count, d]` of new items joined to the graph by their kNN edges; None when the
    model has no kNN relation for `node_type` or the run's graph is gone (`run.has_graph()`) (callers then use
    the edge-less `embed_new_nodes`)."""
    if not derived_relations(run.model, node_type, x):
        return None
    if not run.has_graph():
        log.warning("%s: graph folder not found; new items are embedded from their features alone",
                    run.graph_dir or "a graph given in memory")
        return None
    device = device or torch.device("cpu")
    prepared = run.prepared()
    x_dict, mask_dict, base, n_id = join_items(run.model, prepared, node_type, x, mask, count)
    edges = message_passing_edges(base, {et: None for et in base}, add_reverse=True)
    model = run.model.to(device).eval()
    z, _ = model.embed({t: {n: v.to(device) for n, v in f.items()} for t, f in x_dict.items()},
                       {t: {n: v.to(device) for n, v in f.items()} for t, f in mask_dict.items()},
                       {et: ei.to(device) for et, ei in edges.items()},
                       n_id_dict={t: v.to(device) for t, v in n_id.items()})
    return z[node_type][prepared.num_nodes[node_type]:].cpu()


def join_items(model, prepared, node_type: str, x: dict[str, Tensor], mask: dict[str, Tensor], count: int
               ) -> tuple[dict, dict, dict[EdgeType, Tensor], dict[str, Tensor]]:
    """The training graph with `count` new items of `node_type` appended (rows from `num_nodes`).

    Returns `(x_dict, mask_dict, base_edges, n_id)`: features with the items' rows added, the
    message edges without reverse types (`{et: [2, E]}`: training edges, plus each item's kNN
    edges on the relations of `derived_relations`), and node ids (-1 for the items: no learned
    row). `message_passing_edges(base_edges, ..., add_reverse=True)` gives what the GNN reads.
    """
    n_old = prepared.num_nodes[node_type]
    x_dict = {t: dict(f) for t, f in prepared.x_dict.items()}
    mask_dict = {t: dict(f) for t, f in prepared.mask_dict.items()}
    for name in x_dict[node_type]:
        x_dict[node_type][name] = torch.cat([x_dict[node_type][name], x[name].to(x_dict[node_type][name].dtype)])
        mask_dict[node_type][name] = torch.cat([mask_dict[node_type][name], mask[name].bool()])
    base = {et: prepared.edge_index[et][:, s.train] for et, s in prepared.splits.items()}
    for et, name in derived_relations(model, node_type, x):
        k = neighbour_count(prepared.graph, et, prepared.edge_index[et])
        new = attach_neighbours(x[name], mask[name], prepared.x_dict[node_type][name],
                                prepared.mask_dict[node_type][name], k, offset=n_old)
        base[et] = torch.cat([base[et], new], dim=1)
    n_id = {t: torch.arange(n) for t, n in prepared.num_nodes.items()}
    n_id[node_type] = torch.cat([n_id[node_type], torch.full((count,), -1)])
    return x_dict, mask_dict, base, n_id
