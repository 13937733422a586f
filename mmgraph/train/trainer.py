"""The training loop: full-batch message passing, disjoint supervision, early stopping, resume.

One epoch: split the training edges of each scored relation into message-passing edges and
supervision edges (disjoint, redrawn each epoch), embed every node from the message edges, and
score the supervision edges (filtered 1-N cross-entropy in both directions, or BCE against
filtered negatives) plus the weighted KL of the variational head. Every `eval_every` epochs the
model is evaluated on the validation split (filtered MRR) with all training edges as messages;
the best state is kept, training stops after `patience` evaluations without gain, and a
checkpoint is written atomically so a killed run can `--resume` where it left off.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from mmgraph.eval.evaluate import evaluate_split
from mmgraph.models import GraphSchema, LinkPredictor
from mmgraph.nn.variational import KLSchedule
from mmgraph.train.config import TrainConfig
from mmgraph.train.losses import negative_sampling_loss, one_to_n_loss
from mmgraph.train.message_passing import disjoint_supervision
from mmgraph.train.negatives import filtered_negatives
from mmgraph.train.optim import make_optimizer
from mmgraph.train.prepare import PreparedGraph
from mmgraph.train.regularizers import n3_penalty
from mmgraph.utils import atomic_torch_save, progress

EdgeType = tuple[str, str, str]

log = logging.getLogger("mmgraph.train")


@dataclass
class TrainState:
    """Everything a resumed run needs to continue exactly where a killed one stopped."""

    epoch: int = 0
    best_mrr: float = -1.0
    best_epoch: int = 0
    bad_evals: int = 0
    best_state: dict | None = None
    log_rows: list[dict] = field(default_factory=list)


def build_model(config: TrainConfig, prepared: PreparedGraph) -> LinkPredictor:
    """The model for this graph, initialised from the config's seed (runs are reproducible)."""
    torch.manual_seed(config.seed)
    schema = GraphSchema.from_graph(prepared.graph, prepared.relations, prepared.message_edge_types())
    # Only the features training uses (none in the learned-embeddings-only ablation).
    schema = dataclasses.replace(
        schema,
        feature_dims={t: {n: d for n, d in f.items() if n in prepared.x_dict[t]} for t, f in schema.feature_dims.items()},
        feature_modalities={t: {n: m for n, m in f.items() if n in prepared.x_dict[t]}
                            for t, f in schema.feature_modalities.items()})
    return LinkPredictor(config.model, schema)


def supervision_ratio(config: TrainConfig) -> float:
    if config.supervision_ratio != "auto":
        return float(config.supervision_ratio)
    return 0.3 if config.model.num_layers > 0 else 1.0


def to_device(prepared: PreparedGraph, device: torch.device):
    x = {t: {n: v.to(device) for n, v in f.items()} for t, f in prepared.x_dict.items()}
    m = {t: {n: v.to(device) for n, v in f.items()} for t, f in prepared.mask_dict.items()}
    return x, m


@torch.no_grad()
def embed_for_eval(model: LinkPredictor, prepared: PreparedGraph, device: torch.device,
                   features: tuple[dict, dict] | None = None) -> dict[str, Tensor]:
    """Every node's embedding in eval mode, messages from all training edges.

    `features` is `to_device(prepared, device)` when the caller already holds it (the training loop).
    """
    x, m = features if features is not None else to_device(prepared, device)
    model.eval()
    edges = {et: ei.to(device) for et, ei in prepared.message_edges().items()}
    z, _ = model.embed(x, m, edges)
    return z


def _epoch_loss(model, optimizer, prepared, config, x, m, device, generator, kl_weight) -> tuple[float, float]:
    ratio = supervision_ratio(config)
    message_idx, supervision = {}, {}
    for et, split in prepared.splits.items():
        if et in prepared.relations and ratio < 1.0:
            message_idx[et], supervision[et] = disjoint_supervision(split.train, supervision_ratio=ratio,
                                                                    generator=generator)
        else:
            message_idx[et] = split.train
            if et in prepared.relations:
                supervision[et] = split.train
    edges = {et: ei.to(device) for et, ei in prepared.message_edges(message_idx).items()}
    # Relations that link the same node types train together (one 1-N product per group and step,
    # not one per relation: a knowledge graph's 46 relations cost one call). Each step embeds the
    # graph once, so an epoch costs as many forward passes as the largest group has batches.
    groups = []
    for ends, rels in relation_groups(prepared.relations).items():
        which = torch.cat([torch.full((supervision[et].numel(),), i) for i, et in enumerate(rels)])
        pairs = torch.cat([prepared.edge_index[et][:, supervision[et]] for et in rels], dim=1)
        order = torch.randperm(which.numel(), generator=generator)
        groups.append((rels, which[order], pairs[:, order]))
    steps = max(1, max(-(-w.numel() // config.batch_size) for _, w, _ in groups))
    total, total_kl = 0.0, 0.0
    for step in range(steps):
        model.train()
        z, kl = model.embed(x, m, edges)
        loss = kl_weight * kl
        for rels, which, pairs in groups:
            w, pair = which.tensor_split(steps)[step].to(device), pairs.tensor_split(steps, dim=1)[step].to(device)
            if w.numel():
                loss = loss + _group_loss(model, prepared, config, rels, z, w, pair, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        total += float(loss.detach())
        total_kl += float(kl.detach())
    return total / steps, total_kl / steps


def relation_groups(relations: list[EdgeType]) -> dict[tuple[str, str], list[EdgeType]]:
    groups: dict[tuple[str, str], list[EdgeType]] = {}
    for et in relations:
        groups.setdefault((et[0], et[2]), []).append(et)
    return groups


def _group_loss(model, prepared, config, rels, z, which: Tensor, pair: Tensor, generator) -> Tensor:
    z_src, z_dst = z[rels[0][0]], z[rels[0][2]]
    if config.loss == "1-n":
        r = model.relation_vectors_for(rels, which)
        heads, tails = pair[0], pair[1]
        loss = one_to_n_loss(model.scorer.score_tails(z_src[heads], r, z_dst),
                             model.scorer.score_heads(z_src, r, z_dst[tails]), heads, tails, [prepared.train_filters[et] for et in rels], which,
                             label_smoothing=config.label_smoothing)
        if config.n3_weight > 0:
            loss = loss + config.n3_weight * n3_penalty(model.scorer, z_src[heads], r, z_dst[tails])
        return loss
    return sum(_link_loss(model, prepared, config, et, z, pair[:, which == i], generator)
               for i, et in enumerate(rels) if bool((which == i).any()))


def _link_loss(model, prepared, config, et, z, pair: Tensor, generator) -> Tensor:
    """BCE against filtered negatives for one relation."""
    z_src, z_dst = z[et[0]], z[et[2]]
    num_dst = prepared.num_nodes[et[2]]
    neg = filtered_negatives(pair[0].cpu(), num_dst, config.num_negatives,
                             true_edges=prepared.train_filters[et],
                             generator=generator).to(pair.device)
    pos = model.score(et, z_src[pair[0]], z_dst[pair[1]])
    k = neg.size(1)
    neg_scores = model.score(et, z_src[pair[0]].repeat_interleave(k, 0), z_dst[neg.reshape(-1)]).view(-1, k)
    return negative_sampling_loss(pos, neg_scores)


def fit(model: LinkPredictor, prepared: PreparedGraph, config: TrainConfig, *, device: torch.device,
        checkpoint: Path | None = None, state: TrainState | None = None, resume_blob: dict | None = None
        ) -> TrainState:
    """Train in place; returns the final state with the best weights loaded into `model`."""
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed + 1)
    model.to(device)
    optimizer = make_optimizer(config, model.parameters())
    state = state or TrainState()
    if resume_blob is not None:
        model.load_state_dict(resume_blob["model"])
        optimizer.load_state_dict(resume_blob["optimizer"])
        generator.set_state(resume_blob["generator"])
        torch.set_rng_state(resume_blob["torch_rng"])
    x, m = to_device(prepared, device)
    schedule = KLSchedule(config.model.kl_weight, warmup_epochs=config.model.kl_warmup_epochs)
    start = time.perf_counter()
    bar = progress(range(state.epoch + 1, config.epochs + 1), desc="train", total=config.epochs - state.epoch,
                   unit="epoch")
    for epoch in bar:
        loss, kl = _epoch_loss(model, optimizer, prepared, config, x, m, device, generator, schedule(epoch))
        row = {"epoch": epoch, "loss": loss, "kl": kl}
        if epoch % config.eval_every == 0 or epoch == config.epochs:
            z = embed_for_eval(model, prepared, device, (x, m))
            metric = config.early_stop_metric
            valid = evaluate_split(model, prepared, z, split="valid",
                                   with_classification=metric in ("auc", "ap"))["overall"]
            row.update({f"valid_{k}": valid[k] for k in ("mrr", "hits@1", "hits@3", "hits@10", metric)})
            # best_mrr holds the best value of the early-stop metric (MRR unless configured otherwise)
            if valid[metric] > state.best_mrr:
                state.best_mrr, state.best_epoch, state.bad_evals = valid[metric], epoch, 0
                state.best_state = copy.deepcopy(model.state_dict())
            else:
                state.bad_evals += 1
            log.info("epoch %d  loss %.4f  valid mrr %.4f  hits@1 %.4f  %s %.4f", epoch, loss, valid["mrr"],
                     valid["hits@1"], metric, valid[metric])
        row["seconds"] = time.perf_counter() - start
        state.log_rows.append(row)
        state.epoch = epoch
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, optimizer, state, generator)
        if state.bad_evals >= config.patience:
            log.info("early stop at epoch %d (best valid %s %.4f at epoch %d)", epoch, config.early_stop_metric,
                     state.best_mrr, state.best_epoch)
            break
    if state.best_state is not None:
        model.load_state_dict(state.best_state)
    return state


def save_checkpoint(path: Path, model: LinkPredictor, optimizer: torch.optim.Optimizer, state: TrainState,
                    generator: torch.Generator) -> None:
    blob = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "state": {"epoch": state.epoch, "best_mrr": state.best_mrr, "best_epoch": state.best_epoch,
                  "bad_evals": state.bad_evals, "best_state": state.best_state, "log_rows": state.log_rows},
    }
    atomic_torch_save(blob, path)


def load_checkpoint(path: Path) -> tuple[TrainState, dict]:
    blob = torch.load(path, map_location="cpu", weights_only=True)
    s = blob["state"]
    state = TrainState(epoch=s["epoch"], best_mrr=s["best_mrr"], best_epoch=s["best_epoch"],
                       bad_evals=s["bad_evals"], best_state=s["best_state"], log_rows=s["log_rows"])
    return state, blob
