"""Why a link is predicted, measured: modality effects, evidence edges, similar training links.

- `score_pair`: the model's score of one pair, optionally with message edges removed (each
  with its reverse); without removals it is the score `predict` reports.
- `explain_pair`: the `explain --json` dict. A feature's `effect` is the drop of the score when
  the feature of that end is treated as missing (mask False: the model's own missing-modality
  path); `share` its part of the end's positive effects. `evidence` is the K edges of the pair's
  receptive field whose removal lowers the score most: every field edge is measured exactly
  (batched copies of the field, `PairGraph.field_scores`) and the K best are measured again on
  the whole graph with `score_pair`, the number reported. `similar_links` are the training links
  of the relation nearest the pair: mean cosine of the two ends' embeddings.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from mmgraph.data.graph import edge_key
from mmgraph.errors import InputError
from mmgraph.eval.pair_graph import Node, PairGraph
from mmgraph.eval.predict import resolve_relation_in

EdgeType = tuple[str, str, str]

__all__ = ["score_pair", "explain_pair"]

# The field must give the whole graph's score; a conv that normalises by the degree of nodes
# outside the field (e.g. symmetric GCN) would not, and the whole graph is used instead.
_FIELD_TOLERANCE = 1e-4


def score_pair(model, prepared, source: tuple[str, str], relation: str, target: tuple[str, str], *,
               drop_edges=(), device=None, items=None) -> float:
    """The model's score of `(source, relation, target)` with the message edges `drop_edges`
    (`[(SRC|REL|DST, SRC_ID, DST_ID), ...]`) and their reverses removed.

    `source` is the queried node `(TYPE, ID)` and may be either end of the relation (as
    `predict --node`); `items` (`mmgraph.eval.predict.NewItems`) makes `source` a brand-new item.
    """
    graph = PairGraph(_on(model, device), prepared, items)
    et, src, dst = _pair(graph, source, relation, target)
    return graph.pair_score(et, src, dst, drop=graph.edge_ids(drop_edges))


def explain_pair(model, prepared, source: tuple[str, str], relation: str, target: tuple[str, str] | None = None,
                 *, k: int = 5, device=None, items=None) -> dict:
    """The `explain --json` dict of a pair; without `target`, of the node's top prediction.

    Shape: `{"relation", "source", "target", "score", "modalities": [{"end", "feature", "effect",
    "share"}], "evidence": [{"edge", "source", "target", "effect"}], "similar_links": [{"source",
    "target", "similarity"}]}` (ids as strings, `source` / `target` in the relation's direction).
    """
    if k < 1:
        raise InputError(f"-k must be >= 1, got {k}")
    graph = PairGraph(_on(model, device), prepared, items)
    et, src, dst = _pair(graph, source, relation, target)
    score = graph.pair_score(et, src, dst)
    return {
        "relation": edge_key(et),
        "source": graph.ids[et[0]][src[1]],
        "target": graph.ids[et[2]][dst[1]],
        "score": score,
        "modalities": modality_effects(graph, et, src, dst, score),
        "evidence": evidence(graph, et, src, dst, score, k=k),
        "similar_links": similar_links(graph, et, src, dst, k=k),
    }


def modality_effects(graph: PairGraph, et: EdgeType, src: Node, dst: Node, score: float) -> list[dict]:
    """`[{"end", "feature", "effect", "share"}]`: each end's features, one at a time missing."""
    out = []
    for end, node in (("source", src), ("target", dst)):
        rows = []
        for feature, mask in graph.mask.get(node[0], {}).items():
            present = bool(mask[node[1]])
            effect = score - graph.pair_score(et, src, dst, mask=graph.masked(node, feature)) if present else 0.0
            rows.append({"end": end, "feature": feature, "effect": effect})
        positive = sum(max(r["effect"], 0.0) for r in rows)
        for r in rows:
            r["share"] = max(r["effect"], 0.0) / positive if positive > 0 else 0.0
        out += rows
    return out


def evidence(graph: PairGraph, et: EdgeType, src: Node, dst: Node, score: float, *, k: int) -> list[dict]:
    """The `k` field edges whose removal lowers the score most (only those that lower it), best first."""
    named = []  # (SRC|REL|DST, SRC_ID, DST_ID), once each: parallel copies of an edge go together
    for edge_id, _ in rank_field_edges(graph, et, src, dst, score):
        if graph.describe(edge_id) not in named:
            named.append(graph.describe(edge_id))
        if len(named) == k:
            break
    out = []
    for key, s, d in named:  # measured as `score_pair(drop_edges=[(key, s, d)])` measures it
        measured = score - graph.pair_score(et, src, dst, drop=graph.edge_ids([(key, s, d)]))
        if measured > 0:
            out.append({"edge": key, "source": s, "target": d, "effect": measured})
    return sorted(out, key=lambda e: -e["effect"])


def rank_field_edges(graph: PairGraph, et: EdgeType, src: Node, dst: Node, score: float
                     ) -> list[tuple[int, float]]:
    """Every edge of the pair's receptive field with the score drop its removal causes, largest first."""
    field = graph.field([src, dst])
    if field.candidates.numel() == 0:
        return []
    base = float(graph.field_scores(field, et, src, dst, [torch.zeros(0, dtype=torch.long)])[0])
    if abs(base - score) > _FIELD_TOLERANCE * (1 + abs(score)):  # measure on the whole graph instead
        base = score
        scores = torch.tensor([graph.pair_score(et, src, dst, drop=i.view(1)) for i in field.candidates])
    else:
        scores = graph.field_scores(field, et, src, dst, [i.view(1) for i in field.candidates])
    effects = base - scores
    order = effects.argsort(descending=True)
    return [(int(field.candidates[i]), float(effects[i])) for i in order if effects[i] > 0]


@torch.no_grad()
def similar_links(graph: PairGraph, et: EdgeType, src: Node, dst: Node, *, k: int) -> list[dict]:
    """The `k` training links of `et` whose ends are nearest the pair's: mean of the two cosines."""
    train = graph.prepared.split_edges_of(et, "train")
    if train.size(1) == 0:
        return []
    z_train = graph.embed(drop=graph.new_edges)
    z_pair = graph.embed() if graph.is_item(src) or graph.is_item(dst) else z_train
    zs = z_pair[et[0]][src[1]] if graph.is_item(src) else z_train[et[0]][src[1]]
    zd = z_pair[et[2]][dst[1]] if graph.is_item(dst) else z_train[et[2]][dst[1]]
    sim = (F.cosine_similarity(z_train[et[0]][train[0]], zs[None], dim=1)
           + F.cosine_similarity(z_train[et[2]][train[1]], zd[None], dim=1)) / 2
    if not (graph.is_item(src) or graph.is_item(dst)):
        sim[(train[0] == src[1]) & (train[1] == dst[1])] = float("-inf")  # the pair itself
    values, index = sim.topk(min(k, sim.numel()))
    return [{"source": graph.ids[et[0]][int(train[0, i])], "target": graph.ids[et[2]][int(train[1, i])],
             "similarity": float(v)} for v, i in zip(values, index) if v != float("-inf")]


def _pair(graph: PairGraph, source: tuple[str, str], relation: str, target: tuple[str, str] | None
          ) -> tuple[EdgeType, Node, Node]:
    """The relation and the pair `(type, row)` in the relation's direction; without `target`,
    the node's best-scored partner other than its known training links (as `predict`)."""
    node_type, node_id = _split(source, "--node")
    node = (node_type, graph.row(node_type, node_id, what="--node"))
    et, side = resolve_relation_in(graph.prepared.relations, relation, node_type)
    other_type = et[2] if side == "tail" else et[0]
    if target is None:
        other = (other_type, top_partner(graph, et, side, node))
    else:
        t_type, t_id = _split(target, "--target")
        if t_type != other_type:
            raise InputError(f"--target: {edge_key(et)} links {node_type} to {other_type}, not to {t_type!r}")
        other = (other_type, graph.row(t_type, t_id, what="--target"))
    return (et, node, other) if side == "tail" else (et, other, node)


@torch.no_grad()
def top_partner(graph: PairGraph, et: EdgeType, side: str, node: Node) -> int:
    """The row of the node's top prediction (known training links left out, as in `predict`)."""
    z_train = graph.embed(drop=graph.new_edges)
    z_query = (graph.embed() if graph.is_item(node) else z_train)[node[0]][node[1]][None].to(graph.device)
    train = graph.prepared.split_edges_of(et, "train")
    if side == "tail":
        candidates = z_train[et[2]][:graph.n_old[et[2]]].to(graph.device)
        scores = graph.model.score_tails(et, z_query, candidates)[0].float().cpu()
        known = train[1][train[0] == node[1]] if not graph.is_item(node) else train[1][:0]
    else:
        candidates = z_train[et[0]][:graph.n_old[et[0]]].to(graph.device)
        scores = graph.model.score_heads(et, candidates, z_query)[0].float().cpu()
        known = train[0][train[1] == node[1]] if not graph.is_item(node) else train[0][:0]
    scores[known] = float("-inf")
    if not torch.isfinite(scores).any():
        raise InputError(f"--node: {node[0]} {graph.ids[node[0]][node[1]]} has no candidate left to explain")
    return int(scores.argmax())


def _split(node, what: str) -> tuple[str, str]:
    if isinstance(node, str):
        if ":" not in node:
            raise InputError(f"{what}: expected TYPE:ID, got {node!r}")
        node = tuple(node.split(":", 1))
    if len(node) != 2:
        raise InputError(f"{what}: expected (TYPE, ID), got {node!r}")
    return str(node[0]), str(node[1])


def _on(model, device):
    """The model in eval mode on `device` ("auto", "cpu", "cuda:0", a torch.device; None: where it is)."""
    if device is None:
        return model.eval()
    from mmgraph.utils import resolve_device

    return model.to(resolve_device(device)).eval()
