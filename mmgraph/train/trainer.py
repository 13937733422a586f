"""The training loop: full-batch message passing, disjoint supervision, early stopping, resume.

`fit` picks full-batch or neighbour-sampled mini-batch training (`mmgraph.train.batching`) and
dispatches each epoch to `_epoch_loss` here or to `mmgraph.train.minibatch`.

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
import math
import time
from dataclasses import dataclass, field
from typing import Sequence
from pathlib import Path

import torch
from torch import Tensor

from mmgraph import distributed
from mmgraph.errors import InputError
from mmgraph.eval.evaluate import evaluate_split
from mmgraph.models import GraphSchema, LinkPredictor
from mmgraph.nn.variational import KLSchedule
from mmgraph.train import minibatch
from mmgraph.train.callbacks import Callback, DivergenceGuard, TimeLimit, set_learning_rate, warmup_factor
from mmgraph.train.batching import choose_batching, inference_bytes, memory_budget_bytes
from mmgraph.train.config import TrainConfig, supervision_ratio
from mmgraph.train.freeze import FreezeSchedule
from mmgraph.train.inductive import cold_start_messages
from mmgraph.train.layerwise import embed_layerwise
from mmgraph.train.losses import negative_sampling_loss, one_to_n_loss
from mmgraph.train.message_passing import epoch_edges
from mmgraph.train.negatives import filtered_negatives
from mmgraph.train.optim import make_optimizer, optimizer_step
from mmgraph.train.prepare import PreparedGraph, feature_derived_edge_types
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
    batching: str = ""   # "full" | "mini" once chosen; a resumed run keeps the killed run's choice


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


def to_device(prepared: PreparedGraph, device: torch.device):
    x = {t: {n: v.to(device) for n, v in f.items()} for t, f in prepared.x_dict.items()}
    m = {t: {n: v.to(device) for n, v in f.items()} for t, f in prepared.mask_dict.items()}
    return x, m


@torch.no_grad()
def embed_for_eval(model: LinkPredictor, prepared: PreparedGraph, device: torch.device,
                   features: tuple[dict, dict] | None = None, *, layerwise: bool | None = None) -> dict[str, Tensor]:
    """Every node's embedding in eval mode, messages from all training edges.

    `features` is `to_device(prepared, device)` when the caller already holds it (the training loop).
    `layerwise=True` embeds in bounded memory (`mmgraph.train.layerwise`, same result); None
    chooses it when embedding the whole graph at once would not fit the memory budget.
    """
    x, m = features if features is not None else to_device(prepared, device)
    if layerwise is None:
        need = inference_bytes(prepared, model.config.channels, model.config.num_layers)
        layerwise = need > memory_budget_bytes(device)
    if layerwise:
        return embed_layerwise(model, prepared, x, m)
    model.eval()
    edges = {et: ei.to(device) for et, ei in prepared.message_edges().items()}
    z, _ = model.embed(x, m, edges)
    return z


def _epoch_loss(model, optimizer, prepared, config, x, m, device, generator, kl_weight,
                runner: distributed.StepRunner | None = None, teacher=None, on_step=None) -> tuple[float, float]:
    runner = runner or distributed.DistContext().wrap(model)
    message_idx, supervision = epoch_edges(prepared.splits, prepared.relations,
                                           supervision_ratio=supervision_ratio(config), generator=generator)
    if config.cold_start_ratio > 0:  # some supervised nodes lose every edge: features alone
        message_idx, _ = cold_start_messages(message_idx, supervision, prepared.edge_index,
                                             ratio=config.cold_start_ratio, generator=generator,
                                             keep=frozenset(feature_derived_edge_types(prepared.graph)))
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
    # Under torchrun each rank takes its share of every step's supervision edges (same messages).
    ctx, own_generator = runner.ctx, runner.ctx.generator_for_rank(generator)
    total, total_kl = 0.0, 0.0
    for step in range(steps):
        model.train()
        batch = [_share(ctx, rels, which.tensor_split(steps)[step], pairs.tensor_split(steps, dim=1)[step], device)
                 for rels, which, pairs in groups]
        loss, kl = runner(lambda module: _step_loss(module, prepared, config, x, m, edges, batch, own_generator,
                                                    kl_weight, teacher))
        optimizer_step(optimizer, loss, model.parameters(), grad_clip=config.grad_clip)
        total += float(loss.detach())
        total_kl += float(kl.detach())
        if on_step is not None:
            on_step(step, float(loss.detach()))
    return total / steps, total_kl / steps


def _share(ctx: distributed.DistContext, rels, which: Tensor, pairs: Tensor, device):
    """This rank's share of a group's step batch, weighted so the ranks' mean is the batch mean."""
    return rels, ctx.shard(which).to(device), ctx.shard(pairs, dim=1).to(device), ctx.share_weight(which.numel())


def _step_loss(model, prepared, config, x, m, edges, batch, generator, kl_weight, teacher=None
               ) -> tuple[Tensor, Tensor]:
    """One step's loss on supervision edges `[(relations, which [B], pairs [2, B], weight)]`."""
    z, kl = model.embed(x, m, edges)
    loss = kl_weight * kl
    for rels, w, pair, weight in batch:
        if w.numel():
            part = _group_loss(model, prepared, config, rels, z, w, pair, generator)
            if teacher is not None:
                part = teacher.mix(part, model, rels, z, w, pair)
            loss = loss + weight * part
    return loss, kl


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
        checkpoint: Path | None = None, state: TrainState | None = None, resume_blob: dict | None = None,
        teacher=None, freeze: FreezeSchedule | None = None, callbacks: Sequence[Callback] = ()) -> TrainState:
    """Train in place; returns the final state with the best weights loaded into `model`.

    `teacher` (a `mmgraph.train.distill.Teacher`) mixes its distillation loss into each group's loss;
    `freeze` keeps the parts loaded by `train --init` fixed for its first epochs; `callbacks`
    (`mmgraph.train.callbacks.Callback`) see every step, evaluation and epoch and may stop the run
    (`config.max_minutes` adds a TimeLimit). A :class:`DivergenceGuard` rolls a diverging epoch back
    with a smaller learning rate, and raises TrainingDiverged when that keeps failing.
    """
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
    if freeze is not None:
        freeze.attach(optimizer)
    x, m = to_device(prepared, device)
    ctx = distributed.current()
    runner = ctx.wrap(model)  # after any resumed weights: DDP starts every rank from rank 0's
    mode, why = ctx.broadcast((state.batching, "as chosen before the resume") if state.batching
                              else choose_batching(prepared, config, device))  # rank 0's choice for all
    state.batching = mode
    log.info("%s-batch training: %s", mode, why)
    if mode == "mini" and (teacher is not None or config.cold_start_ratio > 0):
        raise InputError("train config: distillation (--distill-from) and cold_start_ratio need full-batch "
                         "training; set `batching: full`")
    schedule = KLSchedule(config.model.kl_weight, warmup_epochs=config.model.kl_warmup_epochs)
    callbacks = [*callbacks, *([TimeLimit(60 * config.max_minutes)] if config.max_minutes > 0 else [])]
    for cb in callbacks:
        cb.on_start(config)
    guard, base_lrs = DivergenceGuard(), [g["lr"] for g in optimizer.param_groups]
    guard.snapshot(model, optimizer)
    start = time.perf_counter()
    bar = progress(range(state.epoch + 1, config.epochs + 1), desc="train", total=config.epochs - state.epoch,
                   unit="epoch")
    for epoch in bar:
        if freeze is not None:
            freeze.update(epoch)
        def on_step(step: int, step_loss: float, epoch=epoch) -> None:
            for cb in callbacks:
                cb.on_step(epoch, step, step_loss)

        set_learning_rate(optimizer, base_lrs, guard.lr_scale * warmup_factor(epoch, config.warmup_epochs))
        if mode == "full":
            loss, kl = ctx.mean(*_epoch_loss(model, optimizer, prepared, config, x, m, device, generator,
                                             schedule(epoch), runner, teacher=teacher, on_step=on_step))
        else:
            loss, kl = ctx.mean(*minibatch.minibatch_epoch_loss(model, optimizer, prepared, config, x, m, device,
                                                                generator, schedule(epoch), runner, on_step))
        row = {"epoch": epoch, "loss": loss, "kl": kl}
        if not guard.check(epoch, loss, model, optimizer):  # rolled back: this epoch's update is undone
            row.update(seconds=time.perf_counter() - start, rollback=guard.rollbacks)
            state.log_rows.append(row)
            state.epoch = epoch
            continue
        valid = None
        if (epoch % config.eval_every == 0 or epoch == config.epochs) and ctx.is_main:
            valid = _validate(model, prepared, config, device, (x, m), mode, state, row)
        if ctx.broadcast(valid == "overflow"):   # finite weights, embeddings that overflow: a bad epoch too
            guard.check(epoch, math.nan, model, optimizer)
            row.update(seconds=time.perf_counter() - start, rollback=guard.rollbacks)
            state.log_rows.append(row)
            state.epoch = epoch
            continue
        stop_asked = valid is not None and any([bool(cb.on_eval(epoch, valid, valid[config.early_stop_metric]))
                                                for cb in callbacks])
        row["seconds"] = time.perf_counter() - start
        state.log_rows.append(row)
        state.epoch = epoch
        stop_asked = any([bool(cb.on_epoch(epoch, row)) for cb in callbacks]) or stop_asked
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, optimizer, state, generator)
        if ctx.broadcast(state.bad_evals >= config.patience):  # rank 0 decides for all: none waits alone
            log.info("early stop at epoch %d (best valid %s %.4f at epoch %d)", epoch, config.early_stop_metric,
                     state.best_mrr, state.best_epoch)
            break
        if ctx.broadcast(stop_asked):
            break
    if freeze is not None:
        freeze.release()
    state = ctx.broadcast(state)
    if state.best_state is not None:
        model.load_state_dict(state.best_state)
    return state


def _validate(model, prepared, config, device, features, mode, state: TrainState, row: dict):
    """Valid metrics into `row` and the best state into `state`; "overflow" when embeddings are not finite."""
    z = embed_for_eval(model, prepared, device, features, layerwise=mode == "mini")
    if not all(bool(torch.isfinite(v).all()) for v in z.values()):
        return "overflow"
    metric = config.early_stop_metric
    valid = evaluate_split(model, prepared, z, split="valid", with_classification=metric in ("auc", "ap"))["overall"]
    row.update({f"valid_{k}": valid[k] for k in ("mrr", "hits@1", "hits@3", "hits@10", metric)})
    # best_mrr holds the best value of the early-stop metric (MRR unless configured otherwise)
    if valid[metric] > state.best_mrr:
        state.best_mrr, state.best_epoch, state.bad_evals = valid[metric], row["epoch"], 0
        state.best_state = copy.deepcopy(model.state_dict())
    else:
        state.bad_evals += 1
    log.info("epoch %d  loss %.4f  valid mrr %.4f  hits@1 %.4f  %s %.4f", row["epoch"], row["loss"], valid["mrr"],
             valid["hits@1"], metric, valid[metric])
    return valid


def save_checkpoint(path: Path, model: LinkPredictor, optimizer: torch.optim.Optimizer, state: TrainState,
                    generator: torch.Generator) -> None:
    blob = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "state": {"epoch": state.epoch, "best_mrr": state.best_mrr, "best_epoch": state.best_epoch,
                  "bad_evals": state.bad_evals, "best_state": state.best_state, "log_rows": state.log_rows,
                  "batching": state.batching},
    }
    atomic_torch_save(blob, path)


def load_checkpoint(path: Path) -> tuple[TrainState, dict]:
    blob = torch.load(path, map_location="cpu", weights_only=True)
    s = blob["state"]
    state = TrainState(epoch=s["epoch"], best_mrr=s["best_mrr"], best_epoch=s["best_epoch"],
                       bad_evals=s["bad_evals"], best_state=s["best_state"], log_rows=s["log_rows"],
                       batching=s.get("batching", ""))
    return state, blob
