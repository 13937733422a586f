"""The memory estimate behind `batching: auto` against the measured peak of real training steps.

For each graph (the shared sets built from plain manifests, and a synthetic knowledge graph with
250 relation types and a 384-d entity feature, the shape that once ran out of memory) and each
config (the no-config recipe, and a 2-layer SAGE GNN over every relation), a child process
builds the model, then runs two full-batch training steps; the peak resident memory the steps
add (VmHWM after, reset just before, minus the resident set before) is compared with `full_batch_bytes`.
The estimate must be within 1.5x of the measurement either way (below 128 MB both ways, where
allocator noise dominates, any ratio passes).

    python benchmarks/memory_estimate.py --json memory_estimate.json
    python benchmarks/memory_estimate.py --only synthetic
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from common import load_bench_datasets

GNN = {"model": {"num_layers": 2, "conv": "sage", "channels": 128, "learned_embeddings": "featureless",
                 "variational": True, "linear_head": True}, "batch_size": 4096, "loss": "1-n",
       "supervision_ratio": 0.3}


def write_synthetic(out: Path, *, entities: int = 8000, relations: int = 250, triples: int = 150_000,
                    dim: int = 384, seed: int = 0) -> Path:
    """A knowledge graph of `relations` types over entities with a dense feature (like a text embedding)."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "x.npy", rng.normal(size=(entities, dim)).astype(np.float32))
    (out / "entities.csv").write_text("id\n" + "".join(f"e{i}\n" for i in range(entities)))
    h, r, t = rng.integers(entities, size=triples), rng.integers(relations, size=triples), rng.integers(entities, size=triples)
    cut = [int(0.9 * triples), int(0.95 * triples)]
    for split, rows in zip(("train", "valid", "test"), np.split(np.arange(triples), cut)):
        (out / f"{split}.txt").write_text("".join(f"e{h[i]}\tr{r[i]}\te{t[i]}\n" for i in rows))
    (out / "manifest.yaml").write_text(
        "name: synthetic-kg\nnodes:\n  entity: {table: entities.csv, id: id, features: {text: {modality: vector, "
        "npy: x.npy}}}\nedges:\n  - {triples: {train: train.txt, valid: valid.txt, test: test.txt}, "
        "source_type: entity, target_type: entity}\n")
    return out / "manifest.yaml"


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def _reset_peak() -> None:
    """Start VmHWM (the peak resident set) from the current one: loading the graph peaks higher."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def child(graph_dir: str, settings: dict) -> dict:
    """Two full-batch steps of `settings` on the graph: estimate and measured peak, in bytes."""
    import torch

    from mmgraph.data.graph_io import load_graph
    from mmgraph.train.batching import full_batch_bytes
    from mmgraph.train.optim import make_optimizer, resolve_precision
    from mmgraph.train.prepare import prepare_graph
    from mmgraph.train.recipe import resolve_config
    from mmgraph import distributed
    from mmgraph.train.objective_base import Trained
    from mmgraph.train.supervised import SupervisedObjective
    from mmgraph.train.trainer import build_model, run_epoch, to_device
    from mmgraph.runtime import keep_freed_memory

    keep_freed_memory()   # as `fit` does: the allocator setting shapes the peak measured
    torch.set_num_threads(2)
    graph = load_graph(graph_dir)
    cpu = torch.device("cpu")
    config, _ = resolve_config(graph, settings, device=cpu)   # as `train` resolves it here
    precision = resolve_precision(config.precision, cpu)
    prepared = prepare_graph(graph, relations=config.relations, seed=0)
    model = build_model(config, prepared)
    optimizer = make_optimizer(config, model.parameters())
    x, m = to_device(prepared, cpu)
    edges = sum(int(s.train.numel()) for s in prepared.splits.values())
    # two steps of exactly one batch each: supervise two batches' worth of edges
    ratio = min(1.0, 2 * config.batch_size / max(1, sum(int(prepared.splits[et].train.numel())
                                                         for et in prepared.relations)))
    config = config.replace(supervision_ratio=ratio if config.model.num_layers else min(1.0, ratio))
    _reset_peak()
    before = _status_kb("VmRSS")
    objective = SupervisedObjective(prepared, config)
    objective.start(x, m, cpu)
    trained = Trained(model)
    run_epoch(trained, objective, optimizer, "full", 1, torch.Generator().manual_seed(0),
              distributed.DistContext().wrap(trained), config.grad_clip,
              precision=precision)
    peak = _status_kb("VmHWM")
    return {"estimate": full_batch_bytes(prepared, config, precision=precision), "measured": 1024 * max(0, peak - before),
            "nodes": sum(prepared.num_nodes.values()), "message_edges": edges,
            "relations": len(prepared.relations), "model": config.model.to_dict()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="umls,kinships,cora,digits,wn18rr,synthetic")
    parser.add_argument("--work", type=Path, default=Path("/tmp/mmgraph-defaults"))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", nargs=2, metavar=("GRAPH_DIR", "SETTINGS_JSON"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], json.loads(args.child[1]))))
        return 0
    writers = load_bench_datasets()
    rows, ok = [], True
    for name in [n.strip() for n in args.only.split(",") if n.strip()]:
        manifest = write_synthetic(args.work / name) if name == "synthetic" else writers.write_manifest(name, args.work)
        graph_dir = writers.build_graph_dir(manifest, args.work / name / "graph")
        for label, settings in (("recipe", {}), ("sage-2", GNN)):
            out = subprocess.run([sys.executable, __file__, "--child", str(graph_dir), json.dumps(settings)],
                                 capture_output=True, text=True)
            if out.returncode:
                rows.append({"graph": name, "config": label, "error": out.stderr[-400:]})
                ok = False
                continue
            row = {"graph": name, "config": label, **json.loads(out.stdout.strip().splitlines()[-1])}
            row["ratio"] = row["estimate"] / max(1, row["measured"])
            row["within_1.5x"] = 1 / 1.5 <= row["ratio"] <= 1.5 or max(row["estimate"], row["measured"]) < 2 ** 27
            ok &= row["within_1.5x"]
            rows.append(row)
            print(f"{name:10s} {label:7s} estimate {row['estimate'] / 2**30:7.3f} GB  measured "
                  f"{row['measured'] / 2**30:7.3f} GB  ratio {row['ratio']:.2f}  "
                  f"{'ok' if row['within_1.5x'] else 'OFF'}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
