"""A training run as files: RUN_DIR/model.pt, metrics.json, train_log.csv, curves.png, embeddings.pt.

While training, everything is written to `.RUN_DIR.partial/` beside the output (the checkpoint
there lets `--resume` continue a killed run); the folder is renamed to RUN_DIR only at the end,
so a failed run leaves an existing RUN_DIR as it was.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from mmgraph import distributed
from mmgraph.data.graph import edge_key
from mmgraph.data.graph_io import load_graph
from mmgraph.errors import InputError
from mmgraph.eval.evaluate import evaluate_split
from mmgraph.models import LinkPredictor
from mmgraph.train.config import TrainConfig
from mmgraph.train.finetune import init_from_run
from mmgraph.train.prepare import PreparedGraph, prepare_graph, splits_from_plain, splits_to_plain
from mmgraph.train.trainer import build_model, embed_for_eval, fit, load_checkpoint
from mmgraph.utils import atomic_write_text, replace_dir

log = logging.getLogger("mmgraph.train")


@dataclass
class Run:
    """A trained run loaded back: the model and what it was trained on."""

    model: LinkPredictor
    extra: dict
    run_dir: Path

    @property
    def graph_dir(self) -> Path:
        return Path(self.extra["graph_dir"])

    def prepared(self, graph_dir: str | Path | None = None) -> PreparedGraph:
        if "train_config" not in self.extra:
            raise InputError(f"{self.run_dir}: a pretraining run scores no relation yet; fine-tune it with "
                             f"`mmgraph train GRAPH_DIR -o RUN_DIR --init {self.run_dir}`")
        graph = load_graph(graph_dir or self.graph_dir)
        cfg = self.extra["train_config"]
        return prepare_graph(graph, relations=cfg["relations"], seed=cfg["seed"],
                             splits=splits_from_plain(self.extra["splits"]), use_features=cfg["use_features"])

    def embeddings(self) -> dict[str, Tensor]:
        return torch.load(self.run_dir / "embeddings.pt", map_location="cpu", weights_only=True)

    def score(self, *, source: tuple[str, str], relation: str, target: tuple[str, str], drop_edges=()) -> float:
        """The pair's score with `drop_edges` removed (`mmgraph.eval.explain.score_pair`)."""
        from mmgraph.eval.explain import score_pair

        return score_pair(self.model, self.prepared(), source, relation, target, drop_edges=drop_edges)

    def explain(self, *, source: tuple[str, str], relation: str, target: tuple[str, str] | None = None,
                k: int = 5) -> dict:
        """The `explain --json` dict of a pair (`mmgraph.eval.explain.explain_pair`)."""
        from mmgraph.eval.explain import explain_pair

        return explain_pair(self.model, self.prepared(), source, relation, target, k=k)


def load_run(run_dir: str | Path) -> Run:
    run_dir = Path(run_dir)
    path = run_dir / "model.pt"
    if not path.is_file():
        raise InputError(f"{run_dir}: not a run folder (no model.pt); train one with `mmgraph train`")
    model, extra = LinkPredictor.load(path)
    model.eval()
    return Run(model=model, extra=extra, run_dir=run_dir)


def train_run(graph_dir: str | Path, out_dir: str | Path, config: TrainConfig, *, device: torch.device,
              force: bool = False, resume: bool = False, distill_from: str | Path | None = None,
              init: str | Path | None = None) -> dict:
    """Train on GRAPH_DIR, write RUN_DIR, return {"valid": ..., "test": ...} metrics.

    `distill_from`: a run trained on the same graph whose scores teach this one
    (`mmgraph.train.distill`, weighted by `config.distill_weight`).
    `init`: a run folder (e.g. of `mmgraph pretrain`) whose matching modules start the model.
    """
    graph_dir, out_dir = Path(graph_dir).resolve(), Path(out_dir)
    work = out_dir.parent / f".{out_dir.name}.partial"
    checkpoint = work / "checkpoint.pt"
    # Under torchrun only rank 0 touches RUN_DIR; its checks and checkpoint reach the others.
    ctx = distributed.current()
    ctx.on_main(lambda: _start_work_dir(out_dir, work, checkpoint, force=force, resume=resume))

    started = time.perf_counter()
    graph = load_graph(graph_dir)
    prepared = prepare_graph(graph, relations=config.relations, split_ratios=config.split_ratios, seed=config.seed,
                             use_features=config.use_features, inductive=config.inductive)
    teacher = None
    if distill_from is not None:
        from mmgraph.train.distill import Teacher

        teacher = Teacher.from_run(load_run(distill_from), prepared, weight=config.distill_weight,
                                   temperature=config.distill_temperature, device=device)
    model = build_model(config, prepared)
    freeze, init_report = (init_from_run(model, init, config) if init is not None else (None, None))
    state, blob = ctx.on_main(lambda: load_checkpoint(checkpoint) if resume else (None, None))
    state = fit(model, prepared, config, device=device, checkpoint=checkpoint if ctx.is_main else None,
                state=state, resume_blob=blob, teacher=teacher, freeze=freeze)
    if not ctx.is_main:
        return ctx.broadcast(None)

    z = embed_for_eval(model, prepared, device)
    metrics = {split: evaluate_split(model, prepared, z, split=split, seed=config.seed)
               for split in ("valid", "test")}
    extra = run_extra(prepared, config, graph_dir, state, time.perf_counter() - started)
    if distill_from is not None:
        extra["distilled_from"] = str(Path(distill_from).resolve())
    if init_report is not None:
        extra["init"] = {"run": str(Path(init).resolve()), **init_report.to_dict()}
    model.cpu()
    model.save(work / "model.pt", extra=extra)
    torch.save({t: v.cpu() for t, v in z.items()}, work / "embeddings.pt")
    atomic_write_text(work / "metrics.json", json.dumps(metrics, indent=2))
    write_train_log(work / "train_log.csv", state.log_rows)
    plot_curves(work / "curves.png", state.log_rows)
    checkpoint.unlink(missing_ok=True)
    replace_dir(work, out_dir)
    return ctx.broadcast(metrics)


def _start_work_dir(out_dir: Path, work: Path, checkpoint: Path, *, force: bool, resume: bool) -> None:
    if out_dir.exists() and not force:
        raise InputError(f"{out_dir}: output folder exists; pass --force to replace it")
    if resume and not checkpoint.is_file():
        raise InputError(f"--resume: no checkpoint of an interrupted run at {checkpoint}")
    if not resume and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)


def run_extra(prepared: PreparedGraph, config: TrainConfig, graph_dir: Path, state, seconds: float) -> dict:
    """What model.pt carries besides weights: enough to encode new items without the graph."""
    meta = prepared.graph.mmgraph
    return {
        "graph_dir": str(graph_dir),
        "train_config": config.to_dict(),
        "features": meta.get("features", {}) if config.use_features else {},
        "source": meta.get("source", {}),
        "ids": meta["ids"],
        "relations": [list(et) for et in prepared.relations],
        "splits": splits_to_plain(prepared.splits),
        "train_edges": {edge_key(et): prepared.split_edges_of(et, "train") for et in prepared.relations},
        "best_epoch": state.best_epoch,
        "seconds": seconds,
    }


TRAIN_LOG_FIELDS = ["epoch", "loss", "kl", "valid_mrr", "valid_hits@1", "valid_hits@3", "valid_hits@10", "seconds"]


def write_train_log(path: Path, rows: list[dict], fields: list[str] = TRAIN_LOG_FIELDS) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write_text(path, buf.getvalue())


def plot_curves(path: Path, rows: list[dict]) -> None:
    """Training loss and validation MRR per epoch, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_mrr) = plt.subplots(1, 2, figsize=(9, 3.4))
    ax_loss.plot([r["epoch"] for r in rows], [r["loss"] for r in rows], color="tab:blue")
    ax_loss.set(xlabel="epoch", ylabel="training loss", title="loss")
    evals = [r for r in rows if "valid_mrr" in r]
    ax_mrr.plot([r["epoch"] for r in evals], [r["valid_mrr"] for r in evals], marker="o", color="tab:green")
    ax_mrr.set(xlabel="epoch", ylabel="filtered MRR", title="validation MRR", ylim=(0, 1))
    for ax in (ax_loss, ax_mrr):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
