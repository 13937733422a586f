"""A training run, in memory (`Run`) and as files: RUN_DIR/model.pt, metrics.json, train_log.csv,
curves.png, embeddings.pt and config.yaml (the resolved settings).

`train_model` trains on a graph in memory and returns a Run; `Run.save` / `write_run_files` is
the one writer of a run folder and `load_run` the one reader. `train_run` (the CLI's) is
`train_model` plus `write_run_files` with crash safety: while training, everything is written
to `.RUN_DIR.partial/` beside the output (the checkpoint there lets `--resume` continue a killed
run); the folder is renamed to RUN_DIR only at the end, so a failed run leaves an existing
RUN_DIR as it was.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from mmgraph import distributed
from mmgraph.data.graph import edge_key
from mmgraph.data.graph_io import load_graph
from mmgraph.errors import InputError
from mmgraph.models import LinkPredictor
from mmgraph.train.config import TrainConfig
from mmgraph.train.recipe import log_reasons, resolve_config
from mmgraph.train.finetune import init_from_run
from mmgraph.train.prepare import PreparedGraph, prepare_graph, splits_from_plain, splits_to_plain
from mmgraph.train.score_terms import fit_score_terms
from mmgraph.train.trainer import Evaluator, build_model, embed_for_eval, fit, load_checkpoint
from mmgraph.utils import atomic_dir, atomic_write_text, replace_dir

log = logging.getLogger("mmgraph.train")


@dataclass
class Run:
    """A trained (or pretrained) run: the model, what it was trained on, and its outputs.

    Held in memory after `train_model` / `mmgraph.train.pretrain.pretrain_model`, or read back
    from RUN_DIR by `load_run`; `save` writes RUN_DIR (the one writer `mmgraph train` uses too).
    `extra` is what model.pt carries besides weights (`run_extra`); `metrics` is
    {"valid": ..., "test": ...} (None for a pretraining run); `log_rows` one dict per epoch.

    Example::

        run = load_run("run")
        run.embeddings()["clip"].shape     # [num_clips, channels]
        run.save("run_copy")
    """

    model: LinkPredictor
    extra: dict
    run_dir: Path | None = None
    metrics: dict | None = None
    log_rows: list[dict] = field(default_factory=list)
    z: dict[str, Tensor] | None = None            # embeddings, read from embeddings.pt on first use
    held: PreparedGraph | None = None             # the training graph, when trained in memory
    tuning: Any = None                            # a mmgraph.train.tune.TuneResult after `tune`

    @property
    def kind(self) -> str:
        """"train" or "pretrain" (a pretraining run scores no relation yet)."""
        return self.extra.get("kind", "train")

    @property
    def graph_dir(self) -> Path | None:
        """The GRAPH_DIR the run was trained on; None for a graph given in memory."""
        return Path(self.extra["graph_dir"]) if self.extra.get("graph_dir") else None

    @property
    def config_dict(self) -> dict:
        """The resolved training (or pretraining) settings as plain values."""
        return self.extra["train_config" if self.kind == "train" else "pretrain_config"]

    def has_graph(self) -> bool:
        """Whether `prepared()` can give the training graph without being told where it is."""
        if self.held is not None:
            return True
        return self.graph_dir is not None and (self.graph_dir / "graph.pt").is_file()

    def prepared(self, graph_dir: str | Path | HeteroData | None = None) -> PreparedGraph:
        """The training graph with the run's own splits: the held one, or `graph_dir` (a GRAPH_DIR or a
        `HeteroData`), else the run's GRAPH_DIR."""
        if self.kind != "train":
            where = self.run_dir or "this run"
            raise InputError(f"{where}: a pretraining run scores no relation yet; fine-tune it with "
                             f"`mmgraph train GRAPH_DIR -o RUN_DIR --init {where}` (Python: "
                             f"`mmgraph.train(graph, init=pre)`)")
        if graph_dir is None and self.held is not None:
            return self.held
        if graph_dir is None and self.graph_dir is None:
            raise InputError(f"{self.run_dir or 'this run'}: trained on a graph given in memory, so it knows "
                             f"no GRAPH_DIR; pass the graph (graph=GRAPH_DIR or a HeteroData; CLI: --graph)")
        graph = graph_dir if isinstance(graph_dir, HeteroData) else load_graph(graph_dir or self.graph_dir)
        cfg = self.extra["train_config"]
        return prepare_graph(graph, relations=cfg["relations"], seed=cfg["seed"],
                             splits=splits_from_plain(self.extra["splits"]), use_features=cfg["use_features"])

    def embeddings(self) -> dict[str, Tensor]:
        """{node type: [num_nodes, channels]} on the CPU, rows in the order of `extra["ids"][type]`."""
        if self.z is None:
            self.z = torch.load(self.run_dir / "embeddings.pt", map_location="cpu", weights_only=True)
        return self.z

    def save(self, out_dir: str | Path, *, force: bool = False) -> Path:
        """Write RUN_DIR atomically (an existing one only with force=True); returns its path."""
        with atomic_dir(out_dir, force=force) as work:
            write_run_files(self, work)
        self.run_dir = Path(out_dir)
        return self.run_dir


def load_run(run_dir: str | Path) -> Run:
    """Read RUN_DIR (of `mmgraph train` or `mmgraph pretrain`) back; the model in eval mode on the CPU."""
    run_dir = Path(run_dir)
    path = run_dir / "model.pt"
    if not path.is_file():
        raise InputError(f"{run_dir}: not a run folder (no model.pt); train one with `mmgraph train`")
    model, extra = LinkPredictor.load(path)
    model.eval()
    metrics_file = run_dir / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else None
    log_file = run_dir / ("pretrain_log.csv" if extra.get("kind") == "pretrain" else "train_log.csv")
    rows = read_train_log(log_file) if log_file.is_file() else []
    return Run(model=model, extra=extra, run_dir=run_dir, metrics=metrics, log_rows=rows)


def write_run_files(run: Run, folder: Path) -> None:
    """The files of a run folder: model.pt, embeddings.pt, config.yaml, and for a training run
    metrics.json, train_log.csv and curves.png (pretrain_log.csv for a pretraining run)."""
    run.model.cpu().save(folder / "model.pt", extra=run.extra)
    torch.save({t: v.cpu() for t, v in run.embeddings().items()}, folder / "embeddings.pt")
    atomic_write_text(folder / "config.yaml", config_yaml(run.config_dict, run.extra.get("recipe", ())))
    if run.tuning is not None:
        run.tuning.write(folder)
    if run.kind == "pretrain":
        write_train_log(folder / "pretrain_log.csv", run.log_rows, fields=PRETRAIN_LOG_FIELDS)
        return
    atomic_write_text(folder / "metrics.json", json.dumps(run.metrics, indent=2))
    write_train_log(folder / "train_log.csv", run.log_rows)
    plot_curves(folder / "curves.png", run.log_rows)


def config_yaml(config: dict, reasons=()) -> str:
    """A config's plain values as YAML that `TrainConfig.from_yaml` (or PretrainConfig's) reads back;
    the recipe's reasons as comments. `tune` is written false: the file holds the settings chosen,
    so `--config RUN_DIR/config.yaml` trains them instead of searching again."""
    import yaml

    def plain(v):
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return [plain(x) for x in v] if isinstance(v, (list, tuple)) else v

    values = plain(config)
    if "tune" in values:
        values["tune"] = False
    return "".join(f"# {line}\n" for line in reasons) + yaml.safe_dump(values, sort_keys=False)


def _run_source(source: Run | str | Path, what: str) -> tuple[Run, str | None]:
    """A run given in memory or as a folder, and the folder's resolved path for the record."""
    if isinstance(source, Run):
        return source, (str(source.run_dir.resolve()) if source.run_dir is not None else None)
    if not isinstance(source, (str, Path)):
        raise InputError(f"{what}: expected a run or a RUN_DIR path, got {type(source).__name__}")
    return load_run(source), str(Path(source).resolve())


def train_model(graph: HeteroData, config: TrainConfig | Mapping | None, *, device: torch.device,
                evaluate: Evaluator, graph_dir: Path | None = None, distill_from: Run | str | Path | None = None,
                init: Run | str | Path | None = None,
                checkpoint: Path | None = None, state=None, resume_blob: dict | None = None,
                started: float | None = None, config_source: str = "config") -> Run | None:
    """Train on `graph` in memory and evaluate valid and test; the Run holds model, metrics and graph.

    `evaluate` scores a split (`mmgraph.eval.evaluate.evaluate_split`; train does not import eval):
    the validation split while training, then valid and test for `Run.metrics`.
    `graph_dir` is recorded so that a saved run finds its graph again (None: given in memory).
    `distill_from`: a run trained on the same graph whose scores teach this one
    (`mmgraph.train.distill`, weighted by `config.distill_weight`).
    `init`: a run (e.g. of pretraining) whose matching modules start the model.
    `checkpoint`, `state`, `resume_blob`: what `fit` writes and resumes from (`train_run`).
    Under torchrun only rank 0 evaluates and gets the Run; the other ranks get None.
    """
    started = time.perf_counter() if started is None else started
    ctx = distributed.current()
    config, reasons = resolve_config(graph, config, source=config_source, device=device)
    if ctx.is_main:
        log_reasons(log, reasons)
    prepared = prepare_graph(graph, relations=config.relations, split_ratios=config.split_ratios, seed=config.seed,
                             use_features=config.use_features, inductive=config.inductive)
    teacher = teacher_dir = None
    if distill_from is not None:
        from mmgraph.train.distill import Teacher

        teacher_run, teacher_dir = _run_source(distill_from, "--distill-from")
        teacher = Teacher.from_run(teacher_run, prepared, weight=config.distill_weight,
                                   temperature=config.distill_temperature, device=device)
    model = build_model(config, prepared)
    freeze = init_report = init_dir = None
    if init is not None:  # a folder is read by init_from_run itself (its messages name --init)
        if isinstance(init, Run):
            init_dir = str(init.run_dir.resolve()) if init.run_dir is not None else None
            freeze, init_report = init_from_run(model, init.model, config, name=init_dir or "init")
        else:
            init_dir = str(Path(init).resolve())
            freeze, init_report = init_from_run(model, init, config)
    tuning = None
    if config.tune and resume_blob is None:
        from mmgraph.train.tune import tune

        if teacher is not None or init is not None or ctx.distributed:
            raise InputError("tune: not with distillation, --init or torchrun (tune first, then train with "
                             "RUN_DIR/config.yaml)")
        tuning = tune(prepared, config, device=device, evaluate=evaluate)
        model, state, config = tuning.model, tuning.state, tuning.config
    else:
        state = fit(model, prepared, config, device=device, checkpoint=checkpoint, state=state,
                    resume_blob=resume_blob, teacher=teacher, freeze=freeze, evaluate=evaluate)
    if not ctx.is_main:
        return None

    z = embed_for_eval(model, prepared, device)
    fitted_terms = fit_score_terms(model, prepared, z, evaluate, seed=config.seed,
                                   metric=config.early_stop_metric)
    metrics = {split: evaluate(model, prepared, z, split=split, seed=config.seed)
               for split in ("valid", "test")}
    extra = run_extra(prepared, config, graph_dir, state, time.perf_counter() - started)
    if distill_from is not None:
        extra["distilled_from"] = teacher_dir
    extra.update(fitted_terms)   # feature_similarity / degree_prior: weights and valid MRR
    if init_report is not None:
        extra["init"] = {"run": init_dir, **init_report.to_dict()}
    model.cpu().eval()
    extra["recipe"] = list(reasons)
    return Run(model=model, extra=extra, metrics=metrics, log_rows=state.log_rows, tuning=tuning,
               z={t: v.cpu() for t, v in z.items()}, held=prepared)


def train_run(graph_dir: str | Path, out_dir: str | Path, config: TrainConfig | Mapping | None = None, *,
              device: torch.device, evaluate: Evaluator, force: bool = False, resume: bool = False,
              distill_from: str | Path | None = None, init: str | Path | None = None,
              config_source: str = "config") -> dict:
    """Train on GRAPH_DIR, write RUN_DIR, return {"valid": ..., "test": ...} metrics.

    `train_model` with a checkpoint in `.RUN_DIR.partial/` (so `resume=True` continues a killed
    run), then `write_run_files` there and the folder renamed to RUN_DIR (`run_to_dir`).
    """
    def make(graph, graph_dir, **engine):
        return train_model(graph, config, device=device, evaluate=evaluate, graph_dir=graph_dir,
                           distill_from=distill_from, init=init, config_source=config_source, **engine)

    run = run_to_dir(graph_dir, out_dir, make, force=force, resume=resume)
    return distributed.current().broadcast(run.metrics if run is not None else None)


def run_to_dir(graph_dir: str | Path, out_dir: str | Path, make: Callable[..., "Run | None"], *, force: bool,
               resume: bool) -> "Run | None":
    """`make(graph, graph_dir, checkpoint=, state=, resume_blob=, started=)` (training or pretraining)
    with crash safety: everything is written to `.RUN_DIR.partial/` (its checkpoint lets
    `resume=True` continue a killed run), renamed to RUN_DIR at the end. Rank 0's Run; None elsewhere.
    """
    graph_dir, out_dir = Path(graph_dir).resolve(), Path(out_dir)
    work = out_dir.parent / f".{out_dir.name}.partial"
    checkpoint = work / "checkpoint.pt"
    # Under torchrun only rank 0 touches RUN_DIR; its checks and checkpoint reach the others.
    ctx = distributed.current()
    ctx.on_main(lambda: start_work_dir(out_dir, work, checkpoint, force=force, resume=resume))  # before loading

    started = time.perf_counter()
    graph = load_graph(graph_dir)
    state, blob = ctx.on_main(lambda: load_checkpoint(checkpoint) if resume else (None, None))
    run = make(graph, graph_dir, checkpoint=checkpoint if ctx.is_main else None, state=state, resume_blob=blob,
               started=started)
    if run is None:
        return None
    write_run_files(run, work)
    checkpoint.unlink(missing_ok=True)
    replace_dir(work, out_dir)
    return run


def start_work_dir(out_dir: Path, work: Path, checkpoint: Path, *, force: bool, resume: bool) -> None:
    if out_dir.exists() and not force:
        raise InputError(f"{out_dir}: output folder exists; pass --force to replace it")
    if resume and not checkpoint.is_file():
        raise InputError(f"--resume: no checkpoint of an interrupted run at {checkpoint}")
    if not resume and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)


def run_extra(prepared: PreparedGraph, config: TrainConfig, graph_dir: Path | None, state, seconds: float) -> dict:
    """What model.pt carries besides weights: enough to encode new items without the graph."""
    meta = prepared.graph.mmgraph
    return {
        "graph_dir": str(graph_dir) if graph_dir is not None else None,
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
PRETRAIN_LOG_FIELDS = ["epoch", "loss", "edge", "kl", "feature", "contrastive", "seconds"]


def write_train_log(path: Path, rows: list[dict], fields: list[str] = TRAIN_LOG_FIELDS) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write_text(path, buf.getvalue())


def read_train_log(path: Path) -> list[dict]:
    """The rows `write_train_log` wrote: epoch an int, other cells floats, empty cells left out."""
    with open(path, newline="") as f:
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items() if v not in ("", None)}
                for row in csv.DictReader(f)]


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
