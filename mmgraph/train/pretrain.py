"""`mmgraph pretrain`: self-supervised pretraining of a LinkPredictor, no relation label used.

One epoch: hide a share of each relation's training edges from message passing and a share
of the present features at the input, embed the graph once (variational head sampled), then
(a) reconstruct the hidden edges against sampled non-edges with an inner product (VGAE; the
relation name is ignored, so every edge type is "linked" vs "not linked") plus the KL term,
(b) reconstruct the hidden features from their node's embedding (scaled cosine error), and
(c) align the projected modality tokens of the same node, and of the two ends of a training
edge, with InfoNCE, so every modality lands in one space. Valid and test edges of the
`held_out_relations` are never seen. RUN_DIR gets model.pt (the LinkPredictor, scoring no
relation yet; `train --init RUN_DIR` fine-tunes it), embeddings.pt, pretrain_log.csv and config.yaml.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
from torch import Tensor, nn
from torch_geometric.data import HeteroData

from mmgraph.data.graph import edge_key
from mmgraph.data.graph_io import load_graph
from mmgraph.errors import InputError
from mmgraph.data.true_edges import FilterIndex
from mmgraph.models import GraphSchema, LinkPredictor
from mmgraph.models.transfer import identity_names
from mmgraph.nn.variational import KLSchedule
from mmgraph.train.message_passing import disjoint_supervision
from mmgraph.train.negatives import filtered_negatives
from mmgraph.train.optim import optimizer_step
from mmgraph.train.objectives import edge_reconstruction_loss, feature_masks, info_nce, masked_feature_loss
from mmgraph.train.prepare import PreparedGraph, prepare_graph, splits_to_plain
from mmgraph.train.pretrain_config import PretrainConfig
from mmgraph.train.run import PRETRAIN_LOG_FIELDS, Run
from mmgraph.train.trainer import embed_for_eval, to_device
from mmgraph.utils import progress

__all__ = ["FeatureDecoders", "build_pretrain_model", "pretrain", "pretrain_model", "pretrain_run",
           "PRETRAIN_LOG_FIELDS"]

log = logging.getLogger("mmgraph.train")

EdgeType = tuple[str, str, str]


class FeatureDecoders(nn.Module):
    r"""One linear decoder per (node type, feature) from the embedding back to the feature:
    :math:`\hat x_{v,f} = W_{t,f} z_v + b_{t,f}`. Used in pretraining only (not saved).

    Shapes: ``forward(t, f, z [N_t, channels]) -> [N_t, dim_f]``.

    Example::

        dec = FeatureDecoders({"clip": {"sound": 234}}, 64)
        dec("clip", "sound", torch.randn(5, 64)).shape   # (5, 234)
    """

    def __init__(self, feature_dims: dict[str, dict[str, int]], channels: int):
        super().__init__()
        self._index = {}
        self.lins = nn.ModuleList()
        for t, feats in feature_dims.items():
            for f, dim in feats.items():
                self._index[(t, f)] = len(self.lins)
                self.lins.append(nn.Linear(channels, dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in self.lins:
            lin.reset_parameters()

    def forward(self, t: str, f: str, z: Tensor) -> Tensor:
        return self.lins[self._index[(t, f)]](z)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(features={len(self.lins)})"


def build_pretrain_model(config: PretrainConfig, prepared: PreparedGraph) -> LinkPredictor:
    """A LinkPredictor over every message edge type that scores no relation (none is a label here)."""
    torch.manual_seed(config.seed)
    schema = GraphSchema.from_graph(prepared.graph, [], prepared.message_edge_types())
    return LinkPredictor(config.model, schema)


def contrastive_pairs(prepared: PreparedGraph) -> list[tuple[str, str, str, str, EdgeType | None]]:
    """Which modality tokens to align: (type a, feature a, type b, feature b, edge type or None).

    Two features of one node type (edge None: the same node), and a feature at each end of
    every stored edge type, whatever its relation (not the same feature of the same type:
    that pair is not cross-modal).
    """
    pairs = []
    for t, feats in prepared.x_dict.items():
        names = list(feats)
        pairs += [(t, a, t, b, None) for i, a in enumerate(names) for b in names[i + 1:]]
    for et in prepared.edge_index:
        for fa in prepared.x_dict.get(et[0], {}):
            pairs += [(et[0], fa, et[2], fb, et) for fb in prepared.x_dict.get(et[2], {})
                      if (et[0], fa) != (et[2], fb)]
    return pairs


def _sample(n: int, size: int, generator: torch.Generator) -> Tensor:
    return torch.randperm(n, generator=generator)[:size]


def _contrastive_loss(model, prepared, config, pairs, x, m, generator) -> Tensor:
    tokens, present = model.projection(x, m)
    slots = model.projection.slot_names
    total, terms = 0.0, 0
    for ta, fa, tb, fb, et in pairs:
        ia, ib = slots[ta].index(fa), slots[tb].index(fb)
        if et is None:
            rows = (present[ta][:, ia] & present[tb][:, ib]).nonzero().view(-1)
            rows = rows[_sample(rows.numel(), config.contrastive_batch, generator).to(rows.device)]
            src = dst = rows
        else:
            ei = prepared.edge_index[et][:, prepared.splits[et].train].to(tokens[ta].device)
            ei = ei[:, present[ta][ei[0], ia] & present[tb][ei[1], ib]]
            ei = ei[:, _sample(ei.size(1), config.contrastive_batch, generator).to(ei.device)]
            src, dst = ei[0], ei[1]
        if src.numel() < 2:
            continue
        ids = (src, dst) if et is not None else (None, None)
        total = total + info_nce(tokens[ta][src, ia], tokens[tb][dst, ib], temperature=config.temperature,
                                 a_ids=ids[0], b_ids=ids[1])
        terms += 1
    return total / terms if terms else torch.zeros((), device=next(model.parameters()).device)


def _epoch(model, decoders, optimizer, prepared, config, x, m, filters, pairs, generator, kl_weight) -> dict:
    message_idx, supervision = {}, {}
    for et, split in prepared.splits.items():
        message_idx[et], supervision[et] = disjoint_supervision(split.train, supervision_ratio=config.held_out_edges,
                                                                generator=generator)
    device = next(model.parameters()).device
    edges = {et: ei.to(device) for et, ei in prepared.message_edges(message_idx).items()}
    hidden = {t: {f: feature_masks(m[t][f], config.mask_rate, generator=generator) for f in feats}
              for t, feats in m.items()}
    m_in = {t: {f: m[t][f] & ~hidden[t][f] for f in feats} for t, feats in m.items()}
    model.train()
    decoders.train()
    z, kl = model.embed(x, m_in, edges)

    edge_terms = []
    for et, sup in supervision.items():
        if not sup.numel() or et not in filters:
            continue
        pos = prepared.edge_index[et][:, sup]
        k = config.num_negatives
        neg_dst = filtered_negatives(pos[0], prepared.num_nodes[et[2]], k, true_edges=filters[et], generator=generator)
        neg = torch.stack([pos[0].repeat_interleave(k), neg_dst.reshape(-1)])
        edge_terms.append(edge_reconstruction_loss(z[et[0]], z[et[2]], pos.to(device), neg.to(device)))
    edge = torch.stack(edge_terms).mean() if edge_terms else kl * 0.0

    feature_terms = [masked_feature_loss(decoders(t, f, z[t]), x[t][f], hidden[t][f])
                     for t, feats in hidden.items() for f in feats if bool(hidden[t][f].any())]
    feature = torch.stack(feature_terms).mean() if feature_terms else kl * 0.0
    contrastive = (_contrastive_loss(model, prepared, config, pairs, x, m, generator)
                   if config.contrastive_weight > 0 else kl * 0.0)

    loss = (config.edge_weight * edge + kl_weight * kl + config.feature_weight * feature
            + config.contrastive_weight * contrastive)
    optimizer_step(optimizer, loss, [*model.parameters(), *decoders.parameters()], grad_clip=config.grad_clip)
    terms = {"loss": loss, "edge": edge, "kl": kl, "feature": feature, "contrastive": contrastive}
    return {name: float(value.detach()) for name, value in terms.items()}


def has_non_edges(prepared: PreparedGraph, et: EdgeType) -> bool:
    """False when a source is linked to every target (no non-edge to contrast with, e.g. a
    relation to a type of one node): such edges carry messages but are not reconstructed."""
    ei = prepared.edge_index[et][:, prepared.splits[et].train]
    num_dst = prepared.num_nodes[et[2]]
    src = (ei[0] * num_dst + ei[1]).unique() // num_dst
    saturated = bool(src.numel()) and int(torch.bincount(src).max()) >= num_dst
    if saturated:
        log.info("pretrain: %s links a source to every target; not reconstructed", "|".join(et))
    return not saturated


def pretrain(model: LinkPredictor, prepared: PreparedGraph, config: PretrainConfig, *,
             device: torch.device) -> list[dict]:
    """Pretrain in place for `config.epochs` full-batch epochs; returns the log rows."""
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed + 1)
    model.to(device)
    decoders = FeatureDecoders(model.schema.feature_dims, config.model.channels).to(device)
    optimizer = torch.optim.Adam([*model.parameters(), *decoders.parameters()], lr=config.lr,
                                 weight_decay=config.weight_decay)
    x, m = to_device(prepared, device)
    filters = {et: FilterIndex.from_edges(ei[:, prepared.splits[et].train], prepared.num_nodes[et[0]],
                                          prepared.num_nodes[et[2]])
               for et, ei in prepared.edge_index.items() if has_non_edges(prepared, et)}
    pairs = contrastive_pairs(prepared)
    schedule = KLSchedule(config.model.kl_weight, warmup_epochs=config.model.kl_warmup_epochs)
    rows, start = [], time.perf_counter()
    for epoch in progress(range(1, config.epochs + 1), desc="pretrain", total=config.epochs, unit="epoch"):
        row = {"epoch": epoch, **_epoch(model, decoders, optimizer, prepared, config, x, m, filters, pairs,
                                        generator, schedule(epoch))}
        row["seconds"] = time.perf_counter() - start
        rows.append(row)
        if epoch % 10 == 0 or epoch == config.epochs:
            log.info("epoch %d  loss %.4f  edge %.4f  feature %.4f  contrastive %.4f", epoch, row["loss"],
                     row["edge"], row["feature"], row["contrastive"])
    return rows


def held_out_in(graph, names: tuple[str, ...]) -> tuple[str, ...]:
    """The held-out relation names this graph has: a relation that only the fine-tuning graph has
    (images join later) cannot leak here, so it is left out with a note."""
    stored = {n for et in graph.edge_types for n in (et[1], edge_key(et))}
    absent = [n for n in names if n not in stored]
    if absent:
        log.info("pretrain: held-out relation(s) %s not in this graph; nothing of them to hold out", absent)
    kept = tuple(n for n in names if n in stored)
    if names and not kept:
        log.warning("pretrain: no held-out relation is in the graph; every relation keeps its split")
    return kept


def pretrain_model(graph: HeteroData, config: PretrainConfig, *, device: torch.device,
                   graph_dir: Path | None = None, started: float | None = None) -> Run:
    """Pretrain on `graph` in memory; the Run (kind "pretrain") holds the model, embeddings and log.

    `graph_dir` is recorded so that a saved run finds its graph again (None: given in memory).
    """
    started = time.perf_counter() if started is None else started
    prepared = prepare_graph(graph, relations=held_out_in(graph, config.held_out_relations),
                             split_ratios=config.split_ratios, seed=config.seed)
    if not any(prepared.x_dict.values()) and config.edge_weight == 0:
        raise InputError(f"{graph_dir or 'graph'}: the graph has no features, so only edge reconstruction can "
                         f"pretrain it, but edge_weight is 0")
    model = build_pretrain_model(config, prepared)
    rows = pretrain(model, prepared, config, device=device)
    z = embed_for_eval(model, prepared, device)
    meta = graph.mmgraph
    extra = {
        "kind": "pretrain",
        "graph_dir": str(graph_dir) if graph_dir is not None else None,
        "pretrain_config": config.to_dict(),
        "features": meta.get("features", {}),
        "source": meta.get("source", {}),
        "ids": meta["ids"],
        "held_out_relations": [list(et) for et in prepared.relations],
        "splits": splits_to_plain(prepared.splits),
        "modules": identity_names(model),   # what each state-dict entry (or row) is, for --init
        "seconds": time.perf_counter() - started,
    }
    model.cpu().eval()
    return Run(model=model, extra=extra, log_rows=rows, z={t: v.cpu() for t, v in z.items()})


def pretrain_run(graph_dir: str | Path, out_dir: str | Path, config: PretrainConfig, *, device: torch.device,
                 force: bool = False) -> list[dict]:
    """Pretrain on GRAPH_DIR and write RUN_DIR atomically; returns the log rows."""
    graph_dir, out_dir = Path(graph_dir).resolve(), Path(out_dir)
    if out_dir.exists() and not force:  # fail before loading anything
        raise InputError(f"{out_dir}: output folder exists; pass --force to replace it")
    started = time.perf_counter()
    run = pretrain_model(load_graph(graph_dir), config, device=device, graph_dir=graph_dir, started=started)
    run.save(out_dir, force=force)
    return run.log_rows
