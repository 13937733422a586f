"""Top-k links for a known node, or for brand-new items encoded with the run's own encoders."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from mmgraph.data.graph import edge_key
from mmgraph.errors import InputError

EdgeType = tuple[str, str, str]


def resolve_relation(run, name: str, node_type: str) -> tuple[EdgeType, str]:
    """The trained relation called `name` that `node_type` takes part in, and the side it is on."""
    return resolve_relation_in(run.extra["relations"], name, node_type)


def resolve_relation_in(relations, name: str, node_type: str) -> tuple[EdgeType, str]:
    """`resolve_relation` over a list of scored relations: "tail" when `node_type` is the source."""
    relations = [tuple(r) for r in relations]
    hits = [et for et in relations if name in (et[1], edge_key(et))]
    if not hits:
        raise InputError(f"--relation: {name!r} is not a trained relation "
                         f"(trained: {[edge_key(et) for et in relations]})")
    for et in hits:
        if et[0] == node_type:
            return et, "tail"
    for et in hits:
        if et[2] == node_type:
            return et, "head"
    raise InputError(f"--relation: {name!r} does not involve node type {node_type!r}")


@torch.no_grad()
def _top_k(run, et: EdgeType, side: str, z_query: Tensor, z: dict[str, Tensor], k: int,
           exclude: list[Tensor] | None = None) -> list[list[tuple[str, float]]]:
    model = run.model
    if side == "tail":
        scores = model.score_tails(et, z_query, z[et[2]])
        cand_ids = run.extra["ids"][et[2]]
    else:
        scores = model.score_heads(et, z[et[0]], z_query)
        cand_ids = run.extra["ids"][et[0]]
    scores = scores.float()
    if exclude is not None:
        for row, known in enumerate(exclude):
            scores[row, known] = float("-inf")
    k = min(k, scores.size(1))
    values, index = scores.topk(k, dim=1)
    out = []
    for vals, idx in zip(values.tolist(), index.tolist()):
        out.append([(cand_ids[i], float(v)) for v, i in zip(vals, idx) if v != float("-inf")])
    return out


def known_links(run, et: EdgeType, side: str, node: int) -> Tensor:
    """Candidates already linked to `node` by training edges (left out of its top-k)."""
    train = run.extra["train_edges"][edge_key(et)]
    if side == "tail":
        return train[1][train[0] == node]
    return train[0][train[1] == node]


def predict_node(run, node: str, relation: str, k: int = 10) -> dict:
    if ":" not in node:
        raise InputError(f"--node: expected TYPE:ID, got {node!r}")
    node_type, node_id = node.split(":", 1)
    ids = run.extra["ids"]
    if node_type not in ids:
        raise InputError(f"--node: unknown node type {node_type!r} (types: {sorted(ids)})")
    try:
        row = ids[node_type].index(node_id)
    except ValueError:
        raise InputError(f"--node: no node {node_id!r} of type {node_type!r}") from None
    et, side = resolve_relation(run, relation, node_type)
    z = run.embeddings()
    top = _top_k(run, et, side, z[node_type][row:row + 1], z, k, exclude=[known_links(run, et, side, row)])
    return _result(et, [node_id], top)


def predict_items(run, table: str | Path, node_type: str, relation: str, k: int = 10, *,
                  device: torch.device | None = None, join_graph: bool = True) -> dict:
    """Encode the rows of TABLE as new nodes of `node_type` and link them (cold start).

    Where the graph has a kNN relation on the type's features, each item joins the graph by its
    nearest neighbours (`mmgraph.eval.cold_start.embed_in_graph`); otherwise (or with
    `join_graph=False`) it has no edges.
    """
    if node_type not in run.extra["ids"]:
        raise InputError(f"--type: unknown node type {node_type!r} (types: {sorted(run.extra['ids'])})")
    et, side = resolve_relation(run, relation, node_type)
    items = encode_items(run, table, node_type)
    item_ids, x, mask = items.ids, items.x, items.mask
    from mmgraph.eval.cold_start import embed_in_graph

    z_new = embed_in_graph(run, node_type, x, mask, len(item_ids), device=device) if join_graph else None
    if z_new is None:  # no kNN relation to join the graph by: features alone
        z_new = embed_new_nodes(run.model, node_type, x, mask, len(item_ids), device=device)
    run.model.cpu()
    top = _top_k(run, et, side, z_new, run.embeddings(), k)
    return _result(et, item_ids, top)


@dataclass
class NewItems:
    """Brand-new nodes of one type, encoded with a run's encoders: `x {feature: [n, d]}`, `mask {feature: [n]}`."""

    node_type: str
    ids: list[str]
    x: dict[str, Tensor]
    mask: dict[str, Tensor]


def encode_items(run, table: str | Path, node_type: str) -> NewItems:
    """The rows of TABLE (the node type's id and feature columns) encoded as the run's features."""
    from mmgraph.data.features import feature_values
    from mmgraph.data.manifest import FeatureSpec
    from mmgraph.data.tables import read_table
    from mmgraph.encoders import BadItemError, encode_values, encoder_from_spec

    if node_type not in run.extra["ids"]:
        raise InputError(f"--type: unknown node type {node_type!r} (types: {sorted(run.extra['ids'])})")
    table = read_table(Path(table))
    source = run.extra["source"].get(node_type) or {}
    item_ids = [str(v) for v in table.column(source.get("id"), field=f"id column of node type {node_type!r}")]
    x, mask = {}, {}
    for name, info in run.extra["features"].get(node_type, {}).items():
        column = source.get("columns", {}).get(name)
        spec = FeatureSpec(info["modality"], columns=tuple(column)) if isinstance(column, list) \
            else FeatureSpec(info["modality"], column=column)
        if column is None:  # e.g. a vector that came from an .npy file: new items have none
            values = [None] * table.num_rows
        else:
            values = feature_values(spec, table, table.path.parent, where=f"feature {name}")
        try:
            encoded = encode_values(encoder_from_spec(info["spec"]), values, desc=f"{node_type}.{name}")
        except BadItemError as e:
            raise InputError(f"{e.value}: cannot decode ({e.reason}); table {table.path}, row {e.row_index + 1}, "
                             f"feature {name}") from e
        x[name], mask[name] = encoded.x, encoded.mask
    return NewItems(node_type, item_ids, x, mask)


@torch.no_grad()
def embed_new_nodes(model, node_type: str, x: dict[str, Tensor], mask: dict[str, Tensor], count: int,
                    *, device: torch.device | None = None) -> Tensor:
    """Embeddings of nodes that have no edges: message passing leaves them to their own features.

    Every other node type is passed with zero rows and no edge exists, so the result is exactly
    what the new nodes would get inside the full graph. Their learned-embedding slot (if the type
    has one) is marked absent (node id -1): a brand-new item has no learned row.
    """
    device = device or torch.device("cpu")
    model = model.to(device).eval()
    schema = model.schema
    x_dict, mask_dict, n_id = {}, {}, {}
    for t in schema.node_types:
        rows = count if t == node_type else 0
        x_dict[t], mask_dict[t] = {}, {}
        for name, dim in schema.feature_dims.get(t, {}).items():
            if t == node_type:
                x_dict[t][name], mask_dict[t][name] = x[name].to(device), mask[name].to(device)
            else:
                x_dict[t][name] = torch.zeros(0, dim, device=device)
                mask_dict[t][name] = torch.zeros(0, dtype=torch.bool, device=device)
        n_id[t] = torch.full((rows,), -1, dtype=torch.long, device=device)
    z, _ = model.embed(x_dict, mask_dict, {}, n_id_dict=n_id)
    return z[node_type].cpu()


def _result(et: EdgeType, sources: list[str], top) -> dict:
    return {"relation": edge_key(et),
            "results": [{"source": s, "top": [{"id": i, "score": v} for i, v in t]} for s, t in zip(sources, top)]}
