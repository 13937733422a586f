"""`mmgraph pretrain`: self-supervised pretraining of a LinkPredictor, no relation label used.

The objective (`mmgraph.train.pretrain_objective.PretrainObjective`): hide a share of each
relation's training edges from message passing and a share of the present features at the
input, then (a) reconstruct the hidden edges against sampled non-edges (VGAE) plus the KL term,
(b) reconstruct the hidden features, (c) align the modality tokens with InfoNCE. It trains
through the engine (`mmgraph.train.trainer.fit`: the configured optimiser, full or mini-batch,
DDP, checkpoints and `--resume`, the divergence guard, callbacks); it has no validation, so it
trains all its epochs. Valid and test edges of the `held_out_relations` are never seen.
RUN_DIR gets model.pt (the LinkPredictor, scoring no relation yet; `train --init RUN_DIR`
fine-tunes it), embeddings.pt, pretrain_log.csv and config.yaml.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Sequence

import torch
from torch_geometric.data import HeteroData

from mmgraph import distributed
from mmgraph.data.graph import edge_key
from mmgraph.errors import InputError
from mmgraph.models import GraphSchema, LinkPredictor
from mmgraph.models.transfer import identity_names
from mmgraph.train.callbacks import Callback
from mmgraph.train.prepare import PreparedGraph, prepare_graph, splits_to_plain
from mmgraph.train.pretrain_config import PretrainConfig
from mmgraph.train.pretrain_objective import FeatureDecoders, PretrainObjective, contrastive_pairs  # noqa: F401
from mmgraph.train.run import PRETRAIN_LOG_FIELDS, Run, run_to_dir
from mmgraph.train.trainer import TrainState, embed_for_eval, fit

__all__ = ["FeatureDecoders", "build_pretrain_model", "pretrain", "pretrain_model", "pretrain_run",
           "PRETRAIN_LOG_FIELDS"]

log = logging.getLogger("mmgraph.train")

EdgeType = tuple[str, str, str]


def build_pretrain_model(config: PretrainConfig, prepared: PreparedGraph) -> LinkPredictor:
    """A LinkPredictor over every message edge type that scores no relation (none is a label here)."""
    torch.manual_seed(config.seed)
    schema = GraphSchema.from_graph(prepared.graph, [], prepared.message_edge_types())
    return LinkPredictor(config.model, schema)


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


def pretrain(model: LinkPredictor, prepared: PreparedGraph, config: PretrainConfig, *, device: torch.device,
             checkpoint: Path | None = None, state: TrainState | None = None, resume_blob: dict | None = None,
             callbacks: Sequence[Callback] = ()) -> list[dict]:
    """Pretrain in place for `config.epochs` epochs through the engine (`fit`); returns the log rows.

    `checkpoint`, `state`, `resume_blob` are what `fit` writes and resumes from (`pretrain_run`).
    """
    reconstructed = [et for et in prepared.edge_index if has_non_edges(prepared, et)]
    objective = PretrainObjective(prepared, config, reconstructed, model.schema.feature_dims, config.model.channels)
    state = fit(model, prepared, config, device=device, objective=objective, checkpoint=checkpoint, state=state,
                resume_blob=resume_blob, callbacks=callbacks)
    return state.log_rows


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
                   graph_dir: Path | None = None, started: float | None = None, checkpoint: Path | None = None,
                   state: TrainState | None = None, resume_blob: dict | None = None,
                   callbacks: Sequence[Callback] = ()) -> Run | None:
    """Pretrain on `graph` in memory; the Run (kind "pretrain") holds the model, embeddings and log.

    `graph_dir` is recorded so that a saved run finds its graph again (None: given in memory).
    `checkpoint`, `state`, `resume_blob`: what `fit` writes and resumes from (`pretrain_run`).
    Under torchrun only rank 0 gets the Run; the other ranks get None.
    """
    started = time.perf_counter() if started is None else started
    prepared = prepare_graph(graph, relations=held_out_in(graph, config.held_out_relations),
                             split_ratios=config.split_ratios, seed=config.seed)
    if not any(prepared.x_dict.values()) and config.edge_weight == 0:
        raise InputError(f"{graph_dir or 'graph'}: the graph has no features, so only edge reconstruction can "
                         f"pretrain it, but edge_weight is 0")
    model = build_pretrain_model(config, prepared)
    rows = pretrain(model, prepared, config, device=device, checkpoint=checkpoint, state=state,
                    resume_blob=resume_blob, callbacks=callbacks)
    if not distributed.current().is_main:
        return None
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
                 force: bool = False, resume: bool = False) -> list[dict]:
    """Pretrain on GRAPH_DIR and write RUN_DIR atomically; returns the log rows.

    As `train_run` (`run_to_dir`): while pretraining, `.RUN_DIR.partial/checkpoint.pt` lets
    `resume=True` continue a killed run; under torchrun only rank 0 writes.
    """
    def make(graph, graph_dir, **engine):
        return pretrain_model(graph, config, device=device, graph_dir=graph_dir, **engine)

    run = run_to_dir(graph_dir, out_dir, make, force=force, resume=resume)
    return distributed.current().broadcast(run.log_rows if run is not None else None)
