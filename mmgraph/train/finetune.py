"""`mmgraph train --init RUN_DIR`: start a model from a pretrained (or any earlier) run."""
from __future__ import annotations

import logging
from pathlib import Path

from mmgraph.errors import InputError
from mmgraph.models import LinkPredictor
from mmgraph.models.transfer import TransferReport, transfer_weights
from mmgraph.train.config import TrainConfig
from mmgraph.train.freeze import FreezeSchedule

__all__ = ["init_from_run"]

log = logging.getLogger("mmgraph.train")


def init_from_run(model: LinkPredictor, run_dir: str | Path | LinkPredictor, config: TrainConfig, *,
                  name: str | None = None) -> tuple[FreezeSchedule | None, TransferReport]:
    """Load every matching module of RUN_DIR/model.pt (or of a model held in memory) into `model`;
    log what was loaded, new, skipped. `name` says where the source came from in messages.

    Returns the freeze schedule of `config.freeze_epochs` (None when 0) and the report.
    """
    if isinstance(run_dir, LinkPredictor):
        source = run_dir
        run_dir = name or "init"
    else:
        path = Path(run_dir) / "model.pt"
        if not path.is_file():
            raise InputError(f"--init {run_dir}: not a run folder (no model.pt); make one with `mmgraph pretrain`")
        source, _ = LinkPredictor.load(path)
    if source.config.channels != model.config.channels:
        log.warning("--init: the pretrained model has %d channels, this one %d: only modules of the same "
                    "shape load", source.config.channels, model.config.channels)
    report = transfer_weights(model, source)
    if not report.loaded and not report.transferred:
        raise InputError(f"--init {run_dir}: no module of the pretrained model matches this graph and model "
                         f"config ({report.summary()})")
    log.info("--init %s: %s", run_dir, report.summary())
    for kind in ("transferred", "new", "skipped"):
        for name in getattr(report, kind):
            log.info("  %s: %s", kind, name)
    log.debug("  loaded: %s", ", ".join(report.loaded))
    freeze = None
    if config.freeze_epochs > 0:
        freeze = FreezeSchedule(model, report.loaded_masks, epochs=config.freeze_epochs)
        log.info("--init: loaded parts frozen for the first %d epochs", config.freeze_epochs)
    return freeze, report
