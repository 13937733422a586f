"""The graph one scored pair is embedded in, with message edges that can be taken out.

`PairGraph` holds the model's inputs for one explanation: features, masks and the message
edges as *base* edges (no `rev_` types; each base edge also carries its reverse message where
the model adds reverse types, so dropping it drops both). For a brand-new item the graph is the
training graph with the items joined by their kNN edges (`mmgraph.eval.cold_start.join_items`);
as in `predict`, the item is embedded in that joined graph and a known node in the training
graph (the joined graph without the items' edges).

`Field` is the receptive field of a pair under an L-layer GNN: the nodes within L hops and the
message edges into the nodes within L-1 hops. Embedding the field alone gives the pair the
same embeddings as the whole graph (for convs that aggregate over incoming edges), so the
effect of every single field edge can be measured exactly, many removals per batched forward
pass (`PairGraph.field_scores`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mmgraph.data.graph import edge_key, parse_edge_key
from mmgraph.errors import InputError
from mmgraph.train.message_passing import REVERSE_PREFIX, message_passing_edges

EdgeType = tuple[str, str, str]
Node = tuple[str, int]  # (node type, row)

__all__ = ["PairGraph", "Field"]


@dataclass
class Field:
    """The nodes within L hops (`rows`: global rows per type; `local`: global row -> field row, -1
    outside); per GNN layer, the field rows it reads (`layer_rows`, the nodes within L - l hops)
    and its message edges `(type, [2, E] numbered in those rows, base edge ids [E])` (those into
    the nodes within L - l - 1 hops); and the base edge ids of the field (`candidates`)."""

    rows: dict[str, Tensor]
    local: dict[str, Tensor]
    layer_rows: list[dict[str, Tensor]]
    layer_edges: list[list[tuple[EdgeType, Tensor, Tensor]]]
    candidates: Tensor


class PairGraph:
    """Model inputs plus base message edges numbered 0..E-1 across types (`edge_ids`)."""

    def __init__(self, model, prepared, items=None):
        self.model = model.eval()
        self.device = next(model.parameters()).device
        self.prepared = prepared
        self.ids = {t: list(v) for t, v in prepared.graph.mmgraph["ids"].items()}
        self.item_type = items.node_type if items is not None else None
        if items is None:
            self.x, self.mask = prepared.x_dict, prepared.mask_dict
            self.base = {et: prepared.edge_index[et][:, s.train] for et, s in prepared.splits.items()}
            self.n_id = None
            self.n_old = dict(prepared.num_nodes)
        else:
            from mmgraph.eval.cold_start import join_items

            self.x, self.mask, self.base, self.n_id = join_items(model, prepared, items.node_type, items.x,
                                                                 items.mask, len(items.ids))
            self.n_old = dict(prepared.num_nodes)
            self.ids[items.node_type] = self.ids[items.node_type] + list(items.ids)
        self.num_nodes = {t: len(v) for t, v in self.ids.items()}
        self.types = list(self.base)
        sizes = [self.base[et].size(1) for et in self.types]
        self.offset = dict(zip(self.types, torch.tensor([0] + sizes).cumsum(0).tolist()))
        self.num_edges = sum(sizes)
        # Base edges that touch a new item: what a known node's view leaves out.
        self.new_edges = torch.cat([self._ids_where(et, self._touches_item(et)) for et in self.types]) \
            if self.types else torch.zeros(0, dtype=torch.long)

    # --- ids -------------------------------------------------------------------------------------
    def row(self, node_type: str, node_id: str, *, what: str = "--node") -> int:
        """The row of `node_id`; InputError naming the id or type when there is none."""
        if node_type not in self.ids:
            raise InputError(f"{what}: unknown node type {node_type!r} (types: {sorted(self.ids)})")
        ids = self.ids[node_type]
        if node_type == self.item_type and str(node_id) in ids[self.n_old[node_type]:]:
            return ids.index(str(node_id), self.n_old[node_type])  # an item's id wins over a graph node's
        try:
            return ids.index(str(node_id))
        except ValueError:
            raise InputError(f"{what}: no node {node_id!r} of type {node_type!r}") from None

    def is_item(self, node: Node) -> bool:
        return node[0] == self.item_type and node[1] >= self.n_old[node[0]]

    def edge_ids(self, drop_edges) -> Tensor:
        """Base edge ids of `[(SRC|REL|DST or REL, SRC_ID, DST_ID), ...]`, every parallel copy;
        a `rev_` relation names its base edge with the ends swapped."""
        out = []
        for entry in drop_edges:
            try:
                key, src_id, dst_id = entry
            except (TypeError, ValueError):
                raise InputError(f"drop_edges: expected (SRC|REL|DST, SRC_ID, DST_ID), got {entry!r}") from None
            et, flip = self._edge_type(str(key))
            if flip:
                src_id, dst_id = dst_id, src_id
            s = self.row(et[0], src_id, what=f"drop_edges {key}")
            d = self.row(et[2], dst_id, what=f"drop_edges {key}")
            ei = self.base[et]
            hit = ((ei[0] == s) & (ei[1] == d)).nonzero().view(-1)
            if hit.numel() == 0:
                raise InputError(f"drop_edges: {edge_key(et)} {src_id} -> {dst_id} is not a message edge "
                                 f"of the model (only training edges carry messages)")
            out.append(hit + self.offset[et])
        return torch.cat(out).unique() if out else torch.zeros(0, dtype=torch.long)

    def describe(self, edge_id: int) -> tuple[str, str, str]:
        """`(SRC|REL|DST, SRC_ID, DST_ID)` of a base edge id."""
        et = next(t for t in self.types if self.offset[t] <= edge_id < self.offset[t] + self.base[t].size(1))
        s, d = self.base[et][:, edge_id - self.offset[et]].tolist()
        return edge_key(et), self.ids[et[0]][s], self.ids[et[2]][d]

    def _edge_type(self, key: str) -> tuple[EdgeType, bool]:
        flip = False
        hits = [et for et in self.types if key in (et[1], edge_key(et))]
        if not hits and REVERSE_PREFIX in key:
            if "|" in key:
                dst, rel, src = parse_edge_key(key)
                key = edge_key((src, rel[len(REVERSE_PREFIX):], dst))
            else:
                key = key[len(REVERSE_PREFIX):]
            hits, flip = [et for et in self.types if key in (et[1], edge_key(et))], True
        if len(hits) != 1:
            known = [edge_key(et) for et in self.types]
            why = "is ambiguous; give SRC|REL|DST" if hits else "is not a message relation"
            raise InputError(f"drop_edges: relation {key!r} {why} (message relations: {known})")
        return hits[0], flip

    def _touches_item(self, et: EdgeType) -> Tensor:
        ei, hit = self.base[et], torch.zeros(self.base[et].size(1), dtype=torch.bool)
        if self.item_type is None:
            return hit
        for end in (0, 2):
            if et[end] == self.item_type:
                hit |= ei[end // 2] >= self.n_old[self.item_type]
        return hit

    def _ids_where(self, et: EdgeType, keep: Tensor) -> Tensor:
        return keep.nonzero().view(-1) + self.offset[et]

    # --- whole-graph embeddings ------------------------------------------------------------------
    def message_edges(self, drop: Tensor | None = None) -> dict[EdgeType, Tensor]:
        """What the GNN reads: base edges minus `drop` (ids), reverse types added."""
        kept = {}
        for et in self.types:
            ei = self.base[et]
            if drop is not None and drop.numel():
                ids = torch.arange(ei.size(1)) + self.offset[et]
                ei = ei[:, ~torch.isin(ids, drop)]
            kept[et] = ei
        return message_passing_edges(kept, {et: None for et in kept}, add_reverse=True)

    @torch.no_grad()
    def embed(self, *, drop: Tensor | None = None, mask: dict | None = None) -> dict[str, Tensor]:
        """Every node's embedding `{type: [N, d]}` over the whole graph, as `embed_for_eval` does."""
        z, _ = self.model.embed(_to(self.x, self.device), _to(mask or self.mask, self.device),
                                _to(self.message_edges(drop), self.device), n_id_dict=_to(self.n_id, self.device))
        return {t: v.cpu() for t, v in z.items()}

    @torch.no_grad()
    def pair_score(self, et: EdgeType, src: Node, dst: Node, *, drop: Tensor | None = None,
                   mask: dict | None = None) -> float:
        """The pair's score over the whole graph: an item end from the joined graph, a known end
        from the training graph (the items' edges left out), as `predict` embeds them."""
        drop = drop if drop is not None else torch.zeros(0, dtype=torch.long)
        views = {}
        for item_view in {self.is_item(src), self.is_item(dst)}:
            views[item_view] = self.embed(drop=drop if item_view else torch.cat([drop, self.new_edges]), mask=mask)
        zs, zd = views[self.is_item(src)][et[0]][src[1]], views[self.is_item(dst)][et[2]][dst[1]]
        return float(self.model.score(et, zs[None].to(self.device), zd[None].to(self.device))[0])

    def masked(self, node: Node, feature: str) -> dict:
        """The masks with `feature` of `node` missing (the model's missing-modality path)."""
        mask = {t: dict(f) for t, f in self.mask.items()}
        column = mask[node[0]][feature].clone()
        column[node[1]] = False
        mask[node[0]][feature] = column
        return mask

    # --- receptive field -------------------------------------------------------------------------
    def field(self, ends: list[Node]) -> Field:
        """The receptive field of `ends` under the model's GNN (see the module docstring)."""
        layers = self.model.gnn.num_layers if self.model.gnn is not None else 0
        msg = []  # (message type, [2, E] edges, base ids): forward and reverse of every base type
        for et in self.types:
            ids = torch.arange(self.base[et].size(1)) + self.offset[et]
            msg.append((et, self.base[et], ids))
            msg.append(((et[2], REVERSE_PREFIX + et[1], et[0]), self.base[et].flip(0), ids))
        reach = {t: torch.zeros(n, dtype=torch.bool) for t, n in self.num_nodes.items()}
        for t, r in ends:
            reach[t][r] = True
        levels = [reach]  # levels[i]: the nodes within i hops (against the message direction)
        for _ in range(layers):
            grown = {t: v.clone() for t, v in levels[-1].items()}
            for mt, ei, _ in msg:
                grown[mt[0]][ei[0][levels[-1][mt[2]][ei[1]]]] = True
            levels.append(grown)
        rows = {t: v.nonzero().view(-1) for t, v in levels[-1].items()}
        local = {t: _positions(r, self.num_nodes[t]) for t, r in rows.items()}
        layer_rows, layer_edges = [], []
        for layer in range(layers):
            inputs, outputs = levels[layers - layer], levels[layers - layer - 1]
            pos = {t: _positions(v.nonzero().view(-1), v.numel()) for t, v in inputs.items()}
            layer_rows.append({t: local[t][v.nonzero().view(-1)] for t, v in inputs.items()})
            edges = []
            for mt, ei, ids in msg:
                into = outputs[mt[2]][ei[1]]
                edges.append((mt, torch.stack([pos[mt[0]][ei[0, into]], pos[mt[2]][ei[1, into]]]), ids[into]))
            layer_edges.append(edges)
        # the first layer reads the most edges: every later layer's are among them
        cand = torch.cat([ids for _, _, ids in layer_edges[0]]).unique() if layers else torch.zeros(0, dtype=torch.long)
        return Field(rows=rows, local=local, layer_rows=layer_rows, layer_edges=layer_edges, candidates=cand)

    @torch.no_grad()
    def field_scores(self, field: Field, et: EdgeType, src: Node, dst: Node, drops: list[Tensor], *,
                     batch: int = 32) -> Tensor:
        """Scores `[len(drops)]` of the pair with each set of base edge ids removed: `batch`
        copies of the field per forward pass, one set of removals per copy."""
        x = {t: {f: v[field.rows[t]] for f, v in fs.items()} for t, fs in self.x.items()}
        m = {t: {f: v[field.rows[t]] for f, v in fs.items()} for t, fs in self.mask.items()}
        n_id = {t: (self.n_id[t] if self.n_id is not None else torch.arange(self.num_nodes[t]))[r]
                for t, r in field.rows.items()}
        h0 = self.model.encode_nodes(_to(x, self.device), _to(m, self.device), _to(n_id, self.device))
        ends = [(t, int(field.local[t][r])) for t, r in (src, dst)]
        views = [self.is_item(src), self.is_item(dst)]
        out = []
        for start in range(0, len(drops), batch):
            chunk = drops[start:start + batch]
            z = {}
            for item_view in set(views):
                sets = chunk if item_view else [torch.cat([d, self.new_edges]) for d in chunk]
                z[item_view] = self._copies(h0, field, sets, ends)
            out.append(self.model.score(et, z[views[0]][0], z[views[1]][1]).float().cpu())
        return torch.cat(out) if out else torch.zeros(0)

    def _copies(self, h0: dict[str, Tensor], field: Field, sets: list[Tensor], ends: list[tuple[str, int]]
                ) -> list[Tensor]:
        """Embeddings `[len(sets), d]` of each end (field rows) in disjoint copies of the field,
        copy i without the edges `sets[i]`. Layer l runs on the nodes within L - l hops only."""
        from mmgraph.nn.conv._utils import prepare_adjacency

        n = len(sets)
        width = max(1, max(d.numel() for d in sets))
        dropped = torch.full((n, width), -1, dtype=torch.long)  # the sets, padded with an id no edge has
        for i, d in enumerate(sets):
            dropped[i, :d.numel()] = d
        copy = torch.arange(n)[:, None]
        h, rows = h0, {t: torch.arange(v.size(0)) for t, v in h0.items()}  # h: copies of the nodes `rows`
        tiled = False
        gnn = self.model.gnn
        for layer, (layer_rows, layer_edges) in enumerate(zip(field.layer_rows, field.layer_edges)):
            x = {t: h[t][_gather(rows[t], r, copy if tiled else copy[:1], n)] for t, r in layer_rows.items()}
            if not tiled:
                x = {t: v.repeat(n, 1) for t, v in x.items()}
            sizes = {t: r.numel() for t, r in layer_rows.items()}
            edges = {}
            for mt, ei, ids in layer_edges:
                keep = ~(ids[None, :, None] == dropped[:, None, :]).any(-1)  # [n, E]
                src = ei[0][None, :] + copy * sizes[mt[0]]
                dst = ei[1][None, :] + copy * sizes[mt[2]]
                edges[mt] = torch.stack([src[keep], dst[keep]]).to(self.device)
            h = gnn.forward_layer(layer, x, prepare_adjacency(x, edges, gnn.node_types, gnn.edge_types))
            rows, tiled = layer_rows, True
        out = []
        for t, r in ends:
            picked = h[t][_gather(rows[t], torch.tensor([r]), copy if tiled else copy[:1], n)]
            picked = picked if tiled else picked.repeat(n, 1)
            out.append(self.model.readout({t: picked})[0][t])
        return out


def _positions(rows: Tensor, size: int) -> Tensor:
    """`[size]`: the position of each row in `rows`, -1 for the others."""
    pos = torch.full((size,), -1, dtype=torch.long)
    pos[rows] = torch.arange(rows.numel())
    return pos


def _gather(have: Tensor, want: Tensor, copy: Tensor, n: int) -> Tensor:
    """Indices into copies of the rows `have` (copy-major) that pick the rows `want` of each copy."""
    pos = _positions(have, int(have.max()) + 1 if have.numel() else 0)[want] if want.numel() else want
    return (copy * have.numel() + pos[None, :]).reshape(-1)


def _to(value, device: torch.device):
    """Tensors of a (nested) dict on `device`; None stays None."""
    if value is None or isinstance(value, Tensor):
        return value if value is None else value.to(device)
    return {k: _to(v, device) for k, v in value.items()}
