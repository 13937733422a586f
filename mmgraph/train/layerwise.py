r"""Embed every node in bounded memory: the GNN one layer at a time, over chunks of nodes.

Full-batch inference keeps every layer's activations of the whole graph at once. Here layer
:math:`l` runs for one chunk of target nodes at a time, on the subgraph of their complete
in-neighbourhood (all message edges into the chunk, none sampled):

.. math::
    h^{(l+1)}_{C} = \mathrm{layer}_l\big(h^{(l)}_{C \cup \mathcal N(C)},\ \mathcal E_{\to C}\big)

so the result equals full-batch inference (up to float summation order) while only two
``[N, channels]`` node states and one chunk's edges are alive at a time. A chunk holds at most
``max_nodes`` targets and about ``max_edges`` in-edges (a node with more in-edges than that is a
chunk of its own). Feature projection, fusion and the read-out head are per node and run in
chunks of ``max_nodes``.
"""
from __future__ import annotations

import torch
from torch import Tensor

from mmgraph.models import LinkPredictor
from mmgraph.train.sampler import HeteroNeighborSampler
from mmgraph.utils import progress

EdgeType = tuple[str, str, str]

__all__ = ["node_chunks", "feature_rows", "embed_layerwise"]


def node_chunks(in_degree: Tensor, *, max_nodes: int, max_edges: int) -> list[tuple[int, int]]:
    """Consecutive `(start, end)` ranges covering `[0, len(in_degree))`, each with at most
    `max_nodes` nodes and at most `max_edges` in-edges in all (or a single node).

    Example::

        node_chunks(torch.tensor([5, 1, 1, 9]), max_nodes=3, max_edges=6)   # [(0, 2), (2, 3), (3, 4)]
    """
    n = in_degree.numel()
    cost = in_degree.long().cumsum(0)
    chunks, start = [], 0
    while start < n:
        before = int(cost[start - 1]) if start else 0
        end = int(torch.searchsorted(cost, before + max_edges, right=True))
        end = max(start + 1, min(end, start + max_nodes, n))
        chunks.append((start, end))
        start = end
    return chunks


def feature_rows(x: dict, m: dict, ids: dict[str, Tensor]) -> tuple[dict, dict]:
    """Features and masks of the rows `ids[t]` of every type (no rows for a type not in `ids`)."""
    def pick(t: str, v: Tensor) -> Tensor:
        return v[ids[t]] if t in ids else v[:0]
    return ({t: {f: pick(t, v) for f, v in fs.items()} for t, fs in x.items()},
            {t: {f: pick(t, v) for f, v in fs.items()} for t, fs in m.items()})


def _in_degrees(edges: dict[EdgeType, Tensor], num_nodes: dict[str, int]) -> dict[str, Tensor]:
    deg = {t: torch.zeros(n, dtype=torch.long) for t, n in num_nodes.items()}
    for (_, _, dst), ei in edges.items():
        deg[dst] += torch.bincount(ei[1].cpu(), minlength=num_nodes[dst])
    return deg


@torch.no_grad()
def embed_layerwise(model: LinkPredictor, prepared, x: dict, m: dict, *, max_nodes: int = 65536,
                    max_edges: int = 2_000_000) -> dict[str, Tensor]:
    """Every node's embedding in eval mode (messages from all training edges), layer by layer.

    Shapes: `x {t: {f: [N_t, d_f]}}`, `m {t: {f: [N_t]}}` on the model's device ->
    `{t: [N_t, channels]}`. Equal to `model.embed` on the whole graph in eval mode.

    Example::

        x, m = to_device(prepared, device)
        z = embed_layerwise(model, prepared, x, m, max_nodes=4096)
    """
    model.eval()
    device = next(model.parameters()).device
    num_nodes = prepared.num_nodes
    ranges = {t: [(s, min(s + max_nodes, n)) for s in range(0, n, max_nodes)] for t, n in num_nodes.items()}

    def ids_of(start: int, end: int) -> Tensor:
        return torch.arange(start, end, device=device)

    h: dict[str, Tensor] = {}
    for t, chunks in ranges.items():
        parts = []
        for start, end in chunks:
            ids = {t: ids_of(start, end)}
            x_rows, m_rows = feature_rows(x, m, ids)
            parts.append(model.encode_nodes(x_rows, m_rows, n_id_dict=ids)[t])
        h[t] = torch.cat(parts) if parts else torch.empty(0, model.config.channels, device=device)
    if model.gnn is not None:
        edges = prepared.message_edges()
        sampler = HeteroNeighborSampler(edges, num_nodes, [-1])   # one hop, every in-edge
        layer_chunks = {t: node_chunks(d, max_nodes=max_nodes, max_edges=max_edges)
                        for t, d in _in_degrees(edges, num_nodes).items()}
        total = model.gnn.num_layers * sum(len(c) for c in layer_chunks.values())
        bar = progress(range(total), desc="embed (layer-wise)", total=total, unit="chunk") if total >= 20 else iter(())
        for layer in range(model.gnn.num_layers):
            out = {t: torch.empty_like(v) for t, v in h.items()}
            for t, chunks in layer_chunks.items():
                for start, end in chunks:
                    sub = sampler.sample({t: torch.arange(start, end)})
                    n_id = {u: v.to(device) for u, v in sub.n_id.items()}
                    h_sub = {u: h[u][n_id[u]] for u in h}
                    sub_edges = {et: ei.to(device) for et, ei in sub.edge_index.items()}
                    # the seeds come first in n_id, in order
                    out[t][start:end] = model.gnn.forward_layer(layer, h_sub, sub_edges)[t][:end - start]
                    next(bar, None)
            h = out
    z: dict[str, Tensor] = {}
    for t, chunks in ranges.items():
        parts = [model.readout({t: h[t][start:end]})[0][t] for start, end in chunks]
        z[t] = torch.cat(parts) if parts else h[t]
    return model.attach_term_columns(z, x, m)
