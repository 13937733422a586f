"""The training engine: one loop for every objective, full-batch or neighbour-sampled mini-batch.

`fit` trains a model on an *objective* (`mmgraph.train.objective_base.Objective`: the
supervised link objective of `mmgraph.train.supervised` by default, pretraining's, or either
wrapped by distillation) in a *batching mode* ("full": every step embeds the whole graph;
"mini": every step embeds a neighbour-sampled subgraph; `mmgraph.train.batching` chooses).
The objective plans each epoch's steps and computes each step's loss and terms; the engine owns
the rest, once: the optimiser (`config.optimizer`), warm-up, gradient clipping, freezing, DDP,
the divergence guard, callbacks, the time limit, checkpoints and resume.

An objective that validates (the supervised one) is evaluated on the validation split every
`eval_every` epochs through the `evaluate` callable the caller injects (`evaluate_split` of
`mmgraph.eval`, which sits above `train` in the pipeline; without one the run trains all its
epochs and keeps the last weights). The best state is kept and training stops after `patience`
evaluations without gain. An objective without validation (pretraining) trains all its epochs.
Each epoch's log row is the objective's terms averaged over the steps (and ranks), and a
checkpoint is written atomically so a killed run can `--resume` where it left off.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor

from mmgraph import distributed
from mmgraph.runtime import HeapLimit, keep_freed_memory
from mmgraph.models import GraphSchema, LinkPredictor
from mmgraph.train.callbacks import Callback, DivergenceGuard, TimeLimit, set_learning_rate, warmup_factor
from mmgraph.train.batching import choose_batching, inference_bytes, memory_budget_bytes
from mmgraph.train.config import TrainConfig
from mmgraph.train.freeze import FreezeSchedule
from mmgraph.train.layerwise import embed_layerwise
from mmgraph.train.objective_base import Objective, Trained
from mmgraph.train.optim import make_optimizer, optimizer_step, resolve_precision, step_precision
from mmgraph.train.prepare import PreparedGraph
from mmgraph.train.score_terms import set_training_degrees
from mmgraph.utils import atomic_torch_save, progress

EdgeType = tuple[str, str, str]

log = logging.getLogger("mmgraph.train")

# evaluate(model, prepared, z, split="valid", with_classification=bool) -> {"overall": {...}, ...}
# (`mmgraph.eval.evaluate.evaluate_split`, injected by the caller: train does not import eval)
Evaluator = Callable[..., dict]


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
    model = LinkPredictor(config.model, schema)
    set_training_degrees(model, prepared)
    return model


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


def run_epoch(trained: Trained, objective: Objective, optimizer, mode: str, epoch: int, generator, runner,
              grad_clip: float, on_step=None, precision: str = "fp32") -> dict[str, float]:
    """One epoch of steps; the objective's terms averaged over the steps (this rank's).

    `precision` ("fp32" or "bf16", as `optim.resolve_precision` gives it) is the forward's."""
    ctx = runner.ctx
    batches = objective.epoch_steps(mode, epoch, generator, ctx)   # the shared stream: the same on every rank
    own_generator = ctx.generator_for_rank(generator)              # this rank's draws (its negatives)
    # a bar of its own only for long epochs (under the epoch bar of fit)
    steps = progress(batches, desc="steps", total=len(batches), unit="batch") if len(batches) >= 50 else batches
    sums: dict[str, float] = {}
    heap = HeapLimit()   # mini-batches of varying sizes would otherwise fragment the kept heap without bound
    device = next(trained.parameters()).device
    for step_no, batch in enumerate(steps):
        trained.train()
        with step_precision(precision, device):
            loss, terms = runner(lambda module, batch=batch: objective.step_loss(module, batch, own_generator))
        optimizer_step(optimizer, loss, trained.parameters(), grad_clip=grad_clip)
        for name, value in terms.items():
            sums[name] = sums.get(name, 0.0) + float(value.detach())
        if on_step is not None:
            on_step(step_no, float(loss.detach()))
        heap.check()
    return {name: total / len(batches) for name, total in sums.items()}


def fit(model: LinkPredictor, prepared: PreparedGraph, config, *, device: torch.device,
        objective: Objective | None = None, evaluate: Evaluator | None = None,
        checkpoint: Path | None = None, state: TrainState | None = None, resume_blob: dict | None = None,
        teacher=None, freeze: FreezeSchedule | None = None, callbacks: Sequence[Callback] = ()) -> TrainState:
    """Train in place; returns the final state with the best weights loaded into `model`.

    `objective` is what is minimised (default: `SupervisedObjective(prepared, config)`);
    `config` gives the engine's settings (`TrainConfig`, or `PretrainConfig` for pretraining:
    seed, epochs, optimizer, lr, weight_decay, grad_clip, warmup_epochs, max_minutes, batching,
    and for a validating objective eval_every, patience, early_stop_metric). `evaluate` scores
    the validation split (`mmgraph.eval.evaluate.evaluate_split`). `teacher` (a
    `mmgraph.train.distill.Teacher`) wraps the objective in `Distillation`; `freeze` keeps the
    parts loaded by `train --init` fixed for its first epochs; `callbacks`
    (`mmgraph.train.callbacks.Callback`) see every step, evaluation and epoch and may stop the run
    (`config.max_minutes` adds a TimeLimit). A :class:`DivergenceGuard` rolls a diverging epoch back
    with a smaller learning rate, and raises TrainingDiverged when that keeps failing.
    """
    if objective is None:
        from mmgraph.train.supervised import SupervisedObjective

        objective = SupervisedObjective(prepared, config)
    if teacher is not None:
        from mmgraph.train.distill import Distillation

        objective = Distillation(objective, teacher)
    keep_freed_memory()   # large step tensors reuse their pages (mmgraph/runtime.py)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed + 1)
    model.to(device)
    trained = Trained(model, objective.modules()).to(device)
    optimizer = make_optimizer(config, trained.parameters())
    state = state or TrainState()
    if resume_blob is not None:
        model.load_state_dict(resume_blob["model"])
        trained.extras.load_state_dict(resume_blob.get("objective", {}))
        optimizer.load_state_dict(resume_blob["optimizer"])
        generator.set_state(resume_blob["generator"])
    ctx = distributed.current()
    if resume_blob is not None:   # this rank's global RNG (dropout), which its own share may have moved on
        ranks = resume_blob.get("torch_rng_ranks") or []
        torch.set_rng_state(ranks[ctx.rank] if len(ranks) == ctx.world_size else resume_blob["torch_rng"])
    # rank 0 alone writes the checkpoint, but every rank's RNG state goes in it
    gather_rng = ctx.distributed and ctx.broadcast(checkpoint is not None)
    if freeze is not None:
        freeze.attach(optimizer)
    x, m = to_device(prepared, device)
    objective.start(x, m, device)
    runner = ctx.wrap(trained)  # after any resumed weights: DDP starts every rank from rank 0's
    mode, why = ctx.broadcast((state.batching, "as chosen before the resume") if state.batching
                              else choose_batching(prepared, config, device))  # rank 0's choice for all
    state.batching = mode
    log.info("%s-batch %s: %s", mode, objective.activity, why)
    precision = resolve_precision(config.precision, device)   # once: "auto" asks the hardware
    if config.precision != "fp32":
        log.info("step precision %s (asked: %s)", precision, config.precision)
    objective.check(mode)
    validating = objective.validates and evaluate is not None
    callbacks = [*callbacks, *([TimeLimit(60 * config.max_minutes)] if config.max_minutes > 0 else [])]
    for cb in callbacks:
        cb.on_start(config)
    guard, base_lrs = DivergenceGuard(), [g["lr"] for g in optimizer.param_groups]
    guard.snapshot(trained, optimizer)
    start = time.perf_counter()
    bar = progress(range(state.epoch + 1, config.epochs + 1), desc=objective.name, total=config.epochs - state.epoch,
                   unit="epoch")
    for epoch in bar:
        if freeze is not None:
            freeze.update(epoch)
        def on_step(step: int, step_loss: float, epoch=epoch) -> None:
            for cb in callbacks:
                cb.on_step(epoch, step, step_loss)

        set_learning_rate(optimizer, base_lrs, guard.lr_scale * warmup_factor(epoch, config.warmup_epochs))
        terms = run_epoch(trained, objective, optimizer, mode, epoch, generator, runner, config.grad_clip, on_step,
                          precision)
        row = {"epoch": epoch, **dict(zip(terms, ctx.mean(*terms.values())))}
        rolled_back = not guard.check(epoch, row["loss"], trained, optimizer)   # this epoch's update undone
        valid = None
        if not rolled_back and validating and (epoch % config.eval_every == 0 or epoch == config.epochs) \
                and ctx.is_main:
            valid = _validate(model, prepared, config, device, (x, m), mode, state, row, evaluate)
        if not rolled_back and ctx.broadcast(valid == "overflow"):   # finite weights, overflowing embeddings
            rolled_back = not guard.check(epoch, math.nan, trained, optimizer)
        if rolled_back:
            row.update(seconds=time.perf_counter() - start, rollback=guard.rollbacks)
            state.log_rows.append(row)
            state.epoch = epoch
            continue
        stop_asked = valid is not None and any([bool(cb.on_eval(epoch, valid, valid[config.early_stop_metric]))
                                                for cb in callbacks])
        if not validating and ctx.is_main and (epoch % 10 == 0 or epoch == config.epochs):
            log.info("epoch %d  %s", epoch, objective.log_line(row))
        row["seconds"] = time.perf_counter() - start
        state.log_rows.append(row)
        state.epoch = epoch
        stop_asked = any([bool(cb.on_epoch(epoch, row)) for cb in callbacks]) or stop_asked
        rng_states = ctx.all_gather(torch.get_rng_state()) if gather_rng else None
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, optimizer, state, generator, objective_state=trained.extras.state_dict(),
                            rank_rng_states=rng_states)
        if validating and ctx.broadcast(state.bad_evals >= config.patience):  # rank 0 decides for all
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


def _validate(model, prepared, config, device, features, mode, state: TrainState, row: dict, evaluate: Evaluator):
    """Valid metrics into `row` and the best state into `state`; "overflow" when embeddings are not finite."""
    z = embed_for_eval(model, prepared, device, features, layerwise=mode == "mini")
    if not all(bool(torch.isfinite(v).all()) for v in z.values()):
        return "overflow"
    metric = config.early_stop_metric
    valid = evaluate(model, prepared, z, split="valid", with_classification=metric in ("auc", "ap"))["overall"]
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
                    generator: torch.Generator, *, objective_state: dict | None = None,
                    rank_rng_states: list[torch.Tensor] | None = None) -> None:
    """model, optimizer, RNG states and the TrainState; "objective": the objective's own modules
    (pretraining's feature decoders), only when it has any; "torch_rng_ranks": under torchrun, each
    rank's global RNG state in rank order (they part when the ranks' shares draw different amounts)."""
    blob = {
        "model": model.state_dict(),
        **({"objective": objective_state} if objective_state else {}),
        **({"torch_rng_ranks": rank_rng_states} if rank_rng_states else {}),
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
