"""`mmgraph demo`: raw WAVs, PNGs and words -> graph -> trained link predictor -> metrics and predictions."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from mmgraph.errors import InputError
# The demo's settings and dataset live with training (examples and benchmarks use them; they
# must not import the CLI); imported here for run_demo and for older import paths.
from mmgraph.train.presets import DEMO_TRAIN, demo_dataset  # noqa: F401  (DEMO_TRAIN: older import paths)

log = logging.getLogger("mmgraph")


def run_demo(out: Path, *, device: torch.device, epochs: int | None = None, force: bool = False) -> int:
    from mmgraph.data.builder import build_graph
    from mmgraph.data.graph import graph_summary
    from mmgraph.data.graph_io import write_graph
    from mmgraph.eval.evaluate import metrics_table
    from mmgraph.eval.evaluate import evaluate_split
    from mmgraph.train.recipe import resolve_config
    from mmgraph.train.run import load_run, train_run

    graph_dir, run_dir = out / "graph", out / "run"
    if (graph_dir.exists() or run_dir.exists()) and not force:
        raise InputError(f"{out}: demo output exists; pass --force to replace it")
    started = time.perf_counter()
    data = demo_dataset()
    print(f"mmgraph demo: building the graph from raw media in {data}", flush=True)
    graph, report = build_graph(data / "manifest.yaml", device=device, cache_dir=out / "cache", return_report=True)
    write_graph(graph, report, graph_dir, force=True)
    built = time.perf_counter()
    print(graph_summary(graph), flush=True)
    print(f"built in {built - started:.1f} s\n", flush=True)

    # No settings: the demo trains as `mmgraph train` does with no config (the graph's recipe).
    settings = {} if epochs is None else {"epochs": epochs}
    config, _ = resolve_config(graph, settings)
    print(f"training a {config.model.num_layers}-layer {config.model.conv.upper()} link predictor "
          f"with a variational embedding and a {config.model.scorer} scorer", flush=True)
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)  # an 800-node graph: thread start-up costs more than it saves
    try:
        metrics = train_run(graph_dir, run_dir, settings, evaluate=evaluate_split, device=device, force=True)
    finally:
        torch.set_num_threads(threads)
    trained = time.perf_counter()
    print(f"trained in {trained - built:.1f} s\n", flush=True)

    print("filtered ranking (both directions) and classification metrics, test split:")
    print(metrics_table(metrics["test"]))
    print()
    _print_examples(load_run(run_dir))
    says = metrics["test"]["relations"].get("clip|says|word", {})
    print(f"\nclip-says-word Hits@1 = {says.get('hits@1', 0.0):.3f} (bar: 0.90); "
          f"total {time.perf_counter() - started:.1f} s; outputs in {out}/")
    return 0


def _print_examples(run) -> None:
    """Three predictions for test items: two spoken clips and one handwritten image."""
    from mmgraph.data.graph import parse_edge_key
    from mmgraph.eval.predict import predict_node

    prepared = run.prepared()

    def test_sources(key: str) -> list[str]:
        et = parse_edge_key(key)
        if et not in prepared.relations:
            return []
        return [run.extra["ids"][et[0]][i] for i in prepared.split_edges_of(et, "test")[0].tolist()]

    clips, images = test_sources("clip|says|word"), test_sources("image|shows|word")
    picks = [("clip", c, "says") for c in clips[:: max(len(clips) // 2, 1)][:2]]
    picks += [("image", i, "shows") for i in images[len(images) // 2:][:1]]
    print("example predictions (test items, top 3):")
    for node_type, node_id, relation in picks:
        result = predict_node(run, f"{node_type}:{node_id}", relation, k=3)
        tops = ", ".join(f"{t['id']} ({t['score']:.2f})" for t in result["results"][0]["top"])
        print(f"  {node_type} {node_id} {relation}: {tops}")
