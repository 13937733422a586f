"""`train --tune`: search the settings that matter on the validation split, within a wall-time budget.

Optuna's TPE sampler proposes settings around the resolved config (the recipe's, or the user's);
the first trial is that config itself, so the search never ends below it on validation. Every
trial trains through the same engine (`fit`) with two callbacks: a time limit for what is left of
the budget, and a pruner that reports each validation evaluation to Optuna and stops trials
that trail the others (median pruning). Only the validation split is read; the best trial's
model is kept as it is (no retraining), and RUN_DIR gets `tuning.csv` and `tuning.png`.

    result = tune(prepared, config, device=torch.device("cpu"))
    result.model, result.config, result.rows      # best model, its settings, one row per trial
"""
from __future__ import annotations

import csv
import io
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mmgraph.train.callbacks import Callback, TimeLimit
from mmgraph.train.config import TrainConfig, supervision_ratio
from mmgraph.train.recipe import merge_settings
from mmgraph.utils import atomic_write_text

__all__ = ["tune", "TuneResult", "search_space"]

log = logging.getLogger("mmgraph.train")


def search_space(config: TrainConfig) -> dict[str, tuple]:
    """The settings searched for this kind of model: name -> ("log" | "float", lo, hi) or ("choice", values).

    Embedding models (no message passing) search the learning rate, rank, regulariser weight and
    batch size; message-passing models the learning rate, width, dropout and supervision share.
    """
    m = config.model
    if m.num_layers == 0:
        space = {"lr": ("log", config.lr / 5, min(1.0, config.lr * 3)),
                 "model.channels": ("choice", _widths(config, (m.channels // 4, m.channels // 2, m.channels,
                                                               m.channels * 2))),
                 "batch_size": ("choice", sorted({128, 256, 512, 1024, config.batch_size}))}
        if config.loss == "1-n":
            space["n3_weight"] = ("log", 1e-4, 0.1)
            space["label_smoothing"] = ("float", 0.0, 0.2)
        return space
    return {"lr": ("log", config.lr / 4, config.lr * 4),
            "model.channels": ("choice", _widths(config, (32, 64, 128, m.channels))),
            "model.dropout": ("float", 0.0, 0.5),
            "supervision_ratio": ("float", 0.3, 1.0)}


def _widths(config: TrainConfig, widths) -> list[int]:
    """Candidate widths rounded to what the model takes (divisible by its heads, even for complex scorers)."""
    m = config.model
    unit = math.lcm(m.fusion_heads, m.heads if m.conv == "hgt" else 1, 2 if m.scorer in ("complex", "rotate") else 1)
    return sorted({max(unit, 32 // unit * unit, round(w / unit) * unit) for w in widths} | {m.channels})


def _suggest(trial, space: dict[str, tuple]) -> dict[str, Any]:
    values = {}
    for name, spec in space.items():
        if spec[0] == "log":
            values[name] = trial.suggest_float(name, spec[1], spec[2], log=True)
        elif spec[0] == "float":
            values[name] = trial.suggest_float(name, spec[1], spec[2])
        else:
            values[name] = trial.suggest_categorical(name, list(spec[1]))
    return values


def _apply(config: TrainConfig, values: dict[str, Any]) -> TrainConfig:
    change: dict[str, Any] = {}
    for name, value in values.items():
        if name.startswith("model."):
            change.setdefault("model", {})[name[len("model."):]] = value
        else:
            change[name] = value
    settings = merge_settings(config.to_dict(), change)
    settings["tune"] = False
    return TrainConfig.from_dict(settings, source="tuning trial")


class _Pruner(Callback):
    """Reports each validation evaluation to the Optuna trial; stops the trial when Optuna prunes it."""

    def __init__(self, trial):
        self.trial, self.pruned = trial, False

    def on_eval(self, epoch: int, metrics: dict, value: float) -> bool:
        self.trial.report(value, step=epoch)
        self.pruned = self.trial.should_prune()
        return self.pruned


@dataclass
class TuneResult:
    config: TrainConfig
    model: Any
    state: Any
    metric: str
    rows: list[dict] = field(default_factory=list)

    def write(self, run_dir: Path) -> None:
        """`tuning.csv` (trial, settings, valid metric, seconds, pruned) and `tuning.png`."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=["trial", "settings", f"valid_{self.metric}", "seconds", "pruned"])
        writer.writeheader()
        for row in self.rows:
            writer.writerow({"trial": row["trial"], "settings": json.dumps(row["settings"], sort_keys=True),
                             f"valid_{self.metric}": f"{row['value']:.6g}", "seconds": f"{row['seconds']:.1f}",
                             "pruned": row["pruned"]})
        atomic_write_text(run_dir / "tuning.csv", buf.getvalue())
        _plot(run_dir / "tuning.png", self.rows, self.metric)


def tune(prepared, config: TrainConfig, *, device: torch.device, evaluate, budget_minutes: float | None = None,
         callbacks: list[Callback] | None = None) -> TuneResult:
    """Search around `config` for `budget_minutes` (default `config.tune_budget_minutes`); best trial kept.

    `evaluate` scores the validation split (`mmgraph.eval.evaluate.evaluate_split`; see `fit`)."""
    import optuna

    from mmgraph.train.trainer import build_model, fit

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    budget = 60.0 * (budget_minutes if budget_minutes is not None else config.tune_budget_minutes)
    space = search_space(config)
    sampler = optuna.samplers.TPESampler(seed=config.seed)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2 * config.eval_every)
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    base = config.replace(tune=False)
    study.enqueue_trial({name: _start_value(base, name) for name in space})
    started = time.perf_counter()
    best: dict[str, Any] = {}
    rows: list[dict] = []
    log.info("tuning %s on the validation split for %.1f min (TPE sampler, median pruner): %s",
             config.early_stop_metric, budget / 60, ", ".join(space))
    while time.perf_counter() - started < budget * 0.95:
        trial = study.ask()
        values = _suggest(trial, space)
        trial_config = _apply(base, values)
        model = build_model(trial_config, prepared)
        pruned_by = _Pruner(trial)
        limit = TimeLimit(max(1.0, budget - (time.perf_counter() - started)))
        t0 = time.perf_counter()
        state = fit(model, prepared, trial_config, device=device, evaluate=evaluate,
                    callbacks=[limit, pruned_by, *(callbacks or [])])
        value = float(state.best_mrr)
        seconds = time.perf_counter() - t0
        if pruned_by.pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, value)
        rows.append({"trial": trial.number, "settings": values, "value": value, "seconds": seconds,
                     "pruned": pruned_by.pruned})
        log.info("trial %d: valid %s %.4f in %.0f s%s  %s", trial.number, config.early_stop_metric, value, seconds,
                 " (pruned)" if pruned_by.pruned else "", json.dumps(values, default=float))
        if not best or value > best["value"]:
            best = {"value": value, "config": trial_config, "model": model, "state": state, "trial": trial.number}
    log.info("tuning: best trial %d, valid %s %.4f (%d trials in %.0f s)", best["trial"], config.early_stop_metric,
             best["value"], len(rows), time.perf_counter() - started)
    return TuneResult(config=best["config"], model=best["model"], state=best["state"],
                      metric=config.early_stop_metric, rows=rows)


def _start_value(config: TrainConfig, name: str):
    if name.startswith("model."):
        return getattr(config.model, name[len("model."):])
    if name == "supervision_ratio":
        return supervision_ratio(config)
    return getattr(config, name)


def _plot(path: Path, rows: list[dict], metric: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.4))
    done = [r for r in rows if not r["pruned"]]
    cut = [r for r in rows if r["pruned"]]
    ax.scatter([r["trial"] for r in done], [r["value"] for r in done], color="tab:blue", label="finished")
    ax.scatter([r["trial"] for r in cut], [r["value"] for r in cut], color="tab:gray", marker="x", label="pruned")
    best, line = -float("inf"), []
    for r in rows:
        best = max(best, r["value"])
        line.append(best)
    ax.step([r["trial"] for r in rows], line, where="post", color="tab:green", label="best so far")
    ax.set(xlabel="trial", ylabel=f"valid {metric}", title="settings search (validation split only)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
