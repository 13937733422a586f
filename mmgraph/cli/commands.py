"""One function per subcommand; each turns parsed arguments into library calls and prints results."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from mmgraph.cli.interop import cmd_export, cmd_import  # noqa: F401  (dispatched by name from main)
from mmgraph.errors import InputError
from mmgraph.utils import resolve_device

log = logging.getLogger("mmgraph")


def cmd_build(args) -> int:
    from mmgraph import distributed
    from mmgraph.data.builder import build_graph
    from mmgraph.data.graph import graph_summary
    from mmgraph.data.graph_io import write_graph

    out = Path(args.output)
    with distributed.session(resolve_device(args.device)) as ctx:  # under torchrun: each rank encodes a share
        ctx.on_main(lambda: _check_new_output(out, args.force))  # fail before spending minutes on encoding
        graph, report = build_graph(args.manifest, device=ctx.device, cache_dir=args.cache,
                                    skip_bad=args.skip_bad, num_workers=args.workers, batch_size=args.batch_size,
                                    return_report=True)
        ctx.on_main(lambda: write_graph(graph, report, out, force=args.force))
    log.info("%s", graph_summary(graph))
    return 0


def _check_new_output(out: Path, force: bool) -> None:
    if out.exists() and not force:
        raise InputError(f"{out}: output folder exists; pass --force to replace it")


def load_train_config(args) -> dict:
    """The user's settings (`--config` YAML, then the flags); `train` completes them from the graph's recipe."""
    from mmgraph.api import train_config

    relations = [r.strip() for r in args.relations.split(",") if r.strip()] if args.relations else None
    return train_config(args.config, relations=relations, epochs=args.epochs, seed=args.seed,
                        tune=True if args.tune else None, tune_budget_minutes=args.budget)


def cmd_train(args) -> int:
    from mmgraph import distributed
    from mmgraph.eval.evaluate import evaluate_split, metrics_table
    from mmgraph.train.run import train_run

    config = load_train_config(args)
    # train_run is mmgraph.train's training plus Run.save's writer, with a checkpoint for --resume.
    with distributed.session(resolve_device(args.device)) as ctx:  # under torchrun: data-parallel
        metrics = train_run(args.graph_dir, args.output, config, evaluate=evaluate_split, device=ctx.device,
                            force=args.force, resume=args.resume, distill_from=getattr(args, "distill_from", None),
                            init=args.init,
                            config_source=args.config or "command line")
    if ctx.is_main:
        print(metrics_table(metrics["test"]))
    return 0


def cmd_pretrain(args) -> int:
    from mmgraph import distributed
    from mmgraph.api import pretrain_config
    from mmgraph.train.pretrain import pretrain_run

    config = pretrain_config(args.config, epochs=args.epochs, seed=args.seed)
    with distributed.session(resolve_device(args.device)) as ctx:  # under torchrun: data-parallel
        rows = pretrain_run(args.graph_dir, args.output, config, device=ctx.device, force=args.force,
                            resume=args.resume)
    if not ctx.is_main:
        return 0
    last = rows[-1]
    print(f"pretrained {last['epoch']} epochs: loss {last['loss']:.4f} (edge {last['edge']:.4f}, "
          f"feature {last['feature']:.4f}, contrastive {last['contrastive']:.4f}); fine-tune with "
          f"`mmgraph train GRAPH_DIR -o RUN_DIR --init {args.output}`")
    return 0


def cmd_evaluate(args) -> int:
    from mmgraph.api import load_run
    from mmgraph.eval.evaluate import metrics_table

    result = load_run(args.run_dir).evaluate(args.split, graph=args.graph, device=args.device)
    print(json.dumps(result, indent=2) if args.json else metrics_table(result))
    return 0


def cmd_predict(args) -> int:
    from mmgraph.api import load_run

    result = load_run(args.run_dir).predict(node=args.node, items=args.items, type=args.node_type,
                                            relation=args.relation, k=args.k, device=args.device)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_predictions(result))
    return 0


def format_predictions(result: dict) -> str:
    lines = [f"relation {result['relation']}"]
    for r in result["results"]:
        tops = ", ".join(f"{t['id']} ({t['score']:.2f})" for t in r["top"])
        lines.append(f"  {r['source']} -> {tops}")
    return "\n".join(lines)


def cmd_embed(args) -> int:
    from mmgraph.api import load_run
    from mmgraph.eval.export import write_embeddings

    run = load_run(args.run_dir)
    count = write_embeddings(run, args.output, force=args.force)
    log.info("wrote %d embeddings to %s", count, args.output)
    return 0


def cmd_demo(args) -> int:
    from mmgraph.cli.demo import run_demo

    return run_demo(Path(args.output), device=resolve_device(args.device), epochs=args.epochs, force=args.force)
