"""`mmgraph` command line: parse, dispatch, and map errors to exit codes (0 ok, 2 bad input, 1 other)."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback

from mmgraph.runtime import setup_process

setup_process()   # before torch loads (mmgraph/runtime.py says why)

from mmgraph.errors import InputError  # noqa: E402


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad usage already; keep its message on one line with our prefix."""

    def error(self, message: str):  # noqa: D401
        self.print_usage(sys.stderr)
        print(f"mmgraph: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress bars or log lines")
    p.add_argument("--verbose", action="store_true", help="debug logging and tracebacks")


def build_parser() -> argparse.ArgumentParser:
    from mmgraph import __version__

    parser = _Parser(prog="mmgraph", description="Raw media -> heterogeneous graph -> link prediction.")
    parser.add_argument("--version", action="version", version=f"mmgraph {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("demo", help="build the embedded demo dataset, train, evaluate, predict")
    p.add_argument("-o", "--output", default="demo-out", help="folder for the graph and the run (default demo-out)")
    p.add_argument("--device", default="auto")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--force", action="store_true", help="replace an existing output folder")
    _common(p)

    p = sub.add_parser("build", help="encode every item of a manifest and write the graph")
    p.add_argument("manifest")
    p.add_argument("-o", "--output", required=True, metavar="GRAPH_DIR")
    p.add_argument("--device", default="auto")
    p.add_argument("--cache", default=None, metavar="DIR", help="feature cache folder")
    p.add_argument("--skip-bad", action="store_true", help="count undecodable files as missing")
    p.add_argument("--workers", type=int, default=2, help="decoding threads")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--force", action="store_true")
    _common(p)

    p = sub.add_parser("train", help="train a link predictor on a built graph")
    p.add_argument("graph_dir", metavar="GRAPH_DIR")
    p.add_argument("-o", "--output", required=True, metavar="RUN_DIR")
    p.add_argument("--config", default=None, metavar="CFG.yaml")
    p.add_argument("--relations", default=None, help="comma-separated relations to train and evaluate")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--init", default=None, metavar="RUN_DIR", help="start from a pretrained run")
    p.add_argument("--distill-from", default=None, metavar="TEACHER_RUN_DIR",
                   help="learn from a teacher run's scores on the same graph (distillation)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run of the same RUN_DIR")
    p.add_argument("--tune", action="store_true",
                   help="search the settings on the validation split first (Optuna), keep the best trial")
    p.add_argument("--budget", type=float, default=None, metavar="MINUTES",
                   help="wall-time budget of --tune (default 10)")
    p.add_argument("--force", action="store_true")
    _common(p)

    p = sub.add_parser("pretrain", help="self-supervised pretraining (no relation labels) for `train --init`")
    p.add_argument("graph_dir", metavar="GRAPH_DIR")
    p.add_argument("-o", "--output", required=True, metavar="RUN_DIR")
    p.add_argument("--config", default=None, metavar="CFG.yaml", help="PretrainConfig options (YAML)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run of the same RUN_DIR")
    p.add_argument("--force", action="store_true")
    _common(p)

    p = sub.add_parser("evaluate", help="filtered ranking and classification metrics of a run")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--graph", default=None, metavar="GRAPH_DIR")
    p.add_argument("--split", choices=("valid", "test"), default="test")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true")
    _common(p)

    p = sub.add_parser("predict", help="top-k links for a known node or for brand-new items")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--node", default=None, metavar="TYPE:ID")
    p.add_argument("--items", default=None, metavar="TABLE")
    p.add_argument("--type", default=None, dest="node_type", metavar="TYPE")
    p.add_argument("--relation", required=True, metavar="R")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true")
    _common(p)

    p = sub.add_parser("embed", help="write node embeddings to Parquet")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("-o", "--output", required=True, metavar="FILE.parquet")
    p.add_argument("--force", action="store_true")
    _common(p)

    from mmgraph.cli.interop import add_parsers as add_interop_parsers

    add_interop_parsers(sub, _common)
    from mmgraph.cli.explain_cmd import add_parser as add_explain_parser

    add_explain_parser(sub, _common)
    return parser


def _setup_logging(args) -> None:
    from mmgraph.utils import set_progress

    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr, force=True)
    set_progress(not args.quiet)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from mmgraph.cli import commands

    try:
        handler = getattr(args, "handler", None) or getattr(commands, f"cmd_{args.command}")
        return int(handler(args) or 0)
    except InputError as e:
        print(f"mmgraph: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mmgraph: interrupted", file=sys.stderr)
        return 1
    except Exception as e:  # anything unexpected: exit 1 with the reason, traceback on --verbose
        if args.verbose:
            traceback.print_exc()
        print(f"mmgraph: failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
