"""Mini-batch steps with per-layer trimming against the untrimmed step, the row-gather ceiling, and
the epoch in a quick form, on the synthetic graph of `memory_scale.py`.

The graph, the training config (BCE, `--negatives` filtered negatives, SAGE of `--dim` channels,
one layer per fan-out) and the epoch's batches are those of `memory_scale.py` and `fit`
(`epoch_edges`, `epoch_sampler`, `supervision_batches`; `--supervision-ratio` 0.3 is the
trainer's default). One step is `minibatch_step_loss` + backward + Adam, as in
`minibatch_epoch_loss`. For each of `--steps` batches the trimmed step and the untrimmed one
(the same model, `embed` without the trim plan) run on the same sample and negatives (the
generator state is restored between them), alternating which goes first. Before timing, the
seeds' embeddings of both are compared on one batch (eval mode): the rows are `failed` unless
they agree to 1e-4.

Rows (`--json FILE`), medians over the timed steps:

  trim_step.step          trimmed step vs the untrimmed step (ratio > 1: trimming is faster)
  trim_step.gather_share  the step vs `index_select` of as many rows of the same width as the
                          step gathers, measured here (ratio = the step's share of the row-gather
                          ceiling). Rows gathered a step, forward only: every sampled node's input
                          row plus, per layer, one source row per edge the layer reads.
  trim_step.epoch         the whole epoch, EXTRAPOLATED: epoch steps x the median step (trimmed vs
                          untrimmed); the timed steps only, not a measured epoch

Every row also has the CPU seconds (`ours_cpu_s`, `baseline_cpu_s`): with one thread on a shared
machine they are the work done, while wall times grow with the load.

    python benchmarks/trim_step.py [--quick] [--fanouts 10,5] [--steps 6] [--json FILE]
    python benchmarks/trim_step.py --fanouts 5 --batch-size 8192   # the one-layer epoch of the issue
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from mmgraph.runtime import setup_process  # noqa: E402

setup_process()   # before torch loads, as the CLI does
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import make_row, peak_rss_mb, print_rows, write_rows  # noqa: E402
from memory_scale import add_graph_args, make_graph  # noqa: E402

from mmgraph.train import minibatch, trainer  # noqa: E402
from mmgraph.train.config import TrainConfig, supervision_ratio  # noqa: E402
from mmgraph.train.message_passing import epoch_edges  # noqa: E402
from mmgraph.train.optim import optimizer_step  # noqa: E402
from mmgraph.train.prepare import prepare_graph  # noqa: E402
from mmgraph.train.layerwise import feature_rows  # noqa: E402
from mmgraph.utils import resolve_device  # noqa: E402


class Untrimmed:
    """The model as `minibatch_step_loss` sees it, with `embed` ignoring the trim plan."""

    def __init__(self, model):
        self.model = model

    def parameters(self):
        return self.model.parameters()

    def score(self, *args):
        return self.model.score(*args)

    def embed(self, *args, num_sampled_nodes_dict=None, **kwargs):
        return self.model.embed(*args, **kwargs)


def rows_gathered(sub, num_layers: int) -> int:
    """Forward rows a trimmed step gathers: each sampled node's input row, and per layer one
    source row per edge into the rows that layer computes (hops 1..L-l)."""
    nodes = sum(v.numel() for v in sub.n_id.values())
    edges = sum(sum(counts[:num_layers - layer]) for counts in sub.num_sampled_edges.values()
                for layer in range(num_layers))
    return nodes + edges


def gather_seconds(table: torch.Tensor, rows: int, repeat: int = 5) -> float:
    """Median seconds of `index_select` of `rows` random rows of `table` into a preallocated
    buffer (the ceiling, as `hetero_layer.py` measures it)."""
    idx = torch.randint(table.size(0), (rows,))
    out = table.new_empty(rows, table.size(1))
    times = []
    for _ in range(repeat + 1):
        start = time.perf_counter()
        torch.index_select(table, 0, idx, out=out)
        times.append(time.perf_counter() - start)
    return sorted(times[1:])[len(times[1:]) // 2]


def main(argv=None) -> list[dict]:
    parser = add_graph_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    parser.add_argument("--supervision-ratio", type=float, default=0.3)
    parser.add_argument("--steps", type=int, default=6, help="timed steps of each path (--quick: at most 3)")
    args = parser.parse_args(argv)
    if args.quick:
        args.nodes, args.edges, args.steps = args.nodes // 10, args.edges // 10, min(args.steps, 3)
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    fanouts = [int(k) for k in args.fanouts.split(",")]
    config = TrainConfig.from_dict({
        "epochs": 1, "batching": "mini", "fanouts": fanouts, "loss": "bce", "num_negatives": args.negatives,
        "batch_size": args.batch_size, "supervision_ratio": args.supervision_ratio, "relations": ["buys"],
        "split_ratios": [0.999, 0.0005, 0.0005],
        "model": {"channels": args.dim, "num_layers": len(fanouts), "conv": "sage"}})
    start = time.perf_counter()
    prepared = prepare_graph(make_graph(args.nodes, args.edges, args.dim), relations=config.relations,
                             split_ratios=config.split_ratios, seed=0)
    torch.manual_seed(0)
    model = trainer.build_model(config, prepared).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    x, m = trainer.to_device(prepared, device)
    gen = torch.Generator().manual_seed(0)
    message_idx, supervision = epoch_edges(prepared.splits, prepared.relations,
                                           supervision_ratio=supervision_ratio(config), generator=gen)
    sampler = minibatch.epoch_sampler(prepared, config, message_idx)
    filters = minibatch.negative_filters(prepared.train_filters)
    batches = minibatch.supervision_batches(prepared, supervision, config.batch_size, gen)
    setup_s = time.perf_counter() - start
    print(f"{args.nodes} nodes, {args.edges} edges, fan-outs {fanouts}, batch {config.batch_size}: "
          f"{len(batches)} steps an epoch; set up in {setup_s:.0f} s", file=sys.stderr)

    # the gate: the same seeds' embeddings, trimmed and not, on one sample
    which, pairs = batches[0]
    state = gen.get_state()
    seeds = {"user": pairs[0], "item": pairs[1]}
    sub = sampler.sample(seeds, generator=gen)
    gen.set_state(state)
    n_id = {t: v.to(device) for t, v in sub.n_id.items()}
    x_sub, m_sub = feature_rows(x, m, n_id)
    edges = {et: ei.to(device) for et, ei in sub.edge_index.items()}
    model.eval()
    with torch.no_grad():
        full, _ = model.embed(x_sub, m_sub, edges, n_id_dict=n_id)
        cut, _ = model.embed(x_sub, m_sub, edges, n_id_dict=n_id, num_sampled_nodes_dict=sub.num_sampled_nodes)
    max_diff = max(float((cut[t] - full[t][:cut[t].size(0)]).abs().max()) if cut[t].numel() else 0.0 for t in cut)
    equal = max_diff <= 1e-4

    def step(module, which, pairs):
        model.train()
        link, kl, sub = minibatch.minibatch_step_loss(module, prepared, config, sampler, which, pairs, x, m,
                                                      filters, gen)
        optimizer_step(optimizer, link + 1e-3 * kl, model.parameters(), grad_clip=config.grad_clip)
        return sub

    times = {"trimmed": [], "untrimmed": []}
    cpu = {"trimmed": [], "untrimmed": []}   # one thread: CPU seconds are the work, whatever the load
    rows, sampled_s = [], []
    for i, (which, pairs) in enumerate(batches[1:args.steps + 2]):   # the first one is a warm-up
        state = gen.get_state()
        order = ("trimmed", "untrimmed") if i % 2 == 0 else ("untrimmed", "trimmed")
        for path in order:
            gen.set_state(state)
            t0, c0 = time.perf_counter(), time.process_time()
            sub = step(model if path == "trimmed" else Untrimmed(model), which, pairs)
            if i:
                times[path].append(time.perf_counter() - t0)
                cpu[path].append(time.process_time() - c0)
        gen.set_state(state)
        t0 = time.perf_counter()
        sub = sampler.sample({"user": pairs[0], "item": pairs[1]}, generator=gen)
        if i:
            sampled_s.append(time.perf_counter() - t0)
            rows.append(rows_gathered(sub, len(fanouts)))

    def median(v):
        return sorted(v)[len(v) // 2]

    trimmed, untrimmed = median(times["trimmed"]), median(times["untrimmed"])
    cpu_trimmed, cpu_untrimmed = median(cpu["trimmed"]), median(cpu["untrimmed"])
    gathered = median(rows)
    table = next(v for fs in x.values() for v in fs.values())
    ceiling_s = gather_seconds(table, gathered)
    common = {"device": str(device), "nodes": args.nodes, "edges": args.edges, "fanouts": fanouts,
              "batch": config.batch_size, "negatives": config.num_negatives, "timed_steps": len(times["trimmed"]),
              "equal": equal, "max_abs_diff": max_diff, "peak_process_rss_mb": round(peak_rss_mb(), 1),
              "loadavg_1m": round(os.getloadavg()[0], 2)}
    status = {} if equal else {"status": "failed", "error": f"trimmed seeds differ by {max_diff:.2e}"}
    epoch_steps = len(batches)
    out = [
        make_row("trim_step.step", trimmed, "untrimmed step (same sample and negatives)", untrimmed,
                 **common, **status, sample_s=round(median(sampled_s), 4), ours_cpu_s=round(cpu_trimmed, 3),
                 baseline_cpu_s=round(cpu_untrimmed, 3), cpu_ratio=round(cpu_untrimmed / cpu_trimmed, 3)),
        make_row("trim_step.gather_share", trimmed, "index_select of the step's rows (row-gather ceiling)",
                 ceiling_s, **common, **status, rows_gathered=gathered,
                 rows_per_s=round(gathered / trimmed), ceiling_rows_per_s=round(gathered / ceiling_s),
                 share_pct=round(100 * ceiling_s / trimmed, 2)),
        make_row("trim_step.epoch", trimmed * epoch_steps, "untrimmed epoch (extrapolated)", untrimmed * epoch_steps,
                 **common, **status, epoch_steps=epoch_steps, extrapolated=True,
                 supervision_ratio=config.supervision_ratio, ours_cpu_s=round(cpu_trimmed * epoch_steps),
                 baseline_cpu_s=round(cpu_untrimmed * epoch_steps)),
    ]
    print_rows(out, width=24)
    print(f"rows gathered a step {gathered}, share of the gather ceiling {out[1]['share_pct']} %, "
          f"sampling {median(sampled_s):.3f} s of a {trimmed:.3f} s step; CPU-s a step {cpu_trimmed:.2f} trimmed, "
          f"{cpu_untrimmed:.2f} untrimmed; peak RSS {peak_rss_mb():.0f} MiB; "
          f"seeds equal: {equal} (max diff {max_diff:.1e})", file=sys.stderr)
    if args.json:
        write_rows(args.json, out)
    return out


if __name__ == "__main__":
    main()
