"""Heterogeneous message passing at ogbn-mag shape: mmgraph's layers against PyG's.

The graph: paper / author / institution / field_of_study (312k nodes) and four relations with
their explicit reverse types (3.1M edges), d = 64; degrees are skewed. `--quick` divides every
size by 10. Workloads, each timed as two layers forward + backward:

  sage    our RelSAGEConv stack vs PyG HeteroConv({et: SAGEConv}, aggr="sum")
  hgt     our HGTConv stack (heads=2) vs PyG's HGTConv
  mean    one mean aggregation over 4M edges (d = 64) vs the row-gather ceiling: index_select of
          the 4M source rows into a preallocated buffer, the least a gather-based kernel must do;
          also vs PyG's scatter mean and vs the same CSR with int64 indices

Ours runs on precomputed CSRs (`to_csr` once per graph, as a training loop does) and, as a second
row, on raw [2, E] tensors (sorting every call). Every variant runs in its own subprocess so that
its peak memory (VmHWM after resetting it, or torch.cuda.max_memory_allocated) is its own; outputs
of ours and PyG's are compared with the same weights. Rows (also written with --json FILE):

  name, ours_s, baseline, baseline_s, ratio = baseline_s / ours_s (> 1: ours is faster),
  plus ours_peak_mb / baseline_peak_mb (memory above the graph and model) and max_abs_diff.

A row that compares outputs is gated: when max_abs_diff > ATOL + RTOL * max|PyG output| (or the
comparison could not run) the row gets status "failed" and the reason as "error", the table
says DISAGREE, and the script exits 1 after writing every row, so a fast kernel that computes
something else never reads as a result.

    python benchmarks/hetero_layer.py [--quick] [--device cpu|cuda] [--json FILE] [--repeats N]
                                      [--threads N] [--only sage|hgt|mean]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mmgraph.data.naming import reverse_edge_type  # noqa: E402
from mmgraph.nn.aggregate import aggregate, to_csr  # noqa: E402
from mmgraph.nn.conv.hgt import HGTConv  # noqa: E402
from mmgraph.nn.conv.rel_sage import RelSAGEConv  # noqa: E402

NODES = {"paper": 120_000, "author": 170_000, "institution": 2_000, "field_of_study": 20_000}
RELATIONS = [("author", "writes", "paper", 600_000), ("paper", "cites", "paper", 450_000),
             ("paper", "has_topic", "field_of_study", 400_000),
             ("author", "affiliated_with", "institution", 100_000)]
DIM, HEADS, MEAN_EDGES, MEAN_NODES = 64, 2, 4_000_000, 500_000
# float32 sums over hub degrees in another order: agreement to ~1e-5 of the output's scale.
ATOL, RTOL = 1e-5, 1e-4


# ---------------------------------------------------------------------------------------------
# Workload


def skewed_ids(count: int, num: int, gen: torch.Generator) -> torch.Tensor:
    """Ids with a heavy head (a few hubs get many edges), shuffled so hubs are spread out."""
    ranks = (num * torch.rand(count, generator=gen).pow(2.0)).long().clamp_(max=num - 1)
    return torch.randperm(num, generator=gen)[ranks]


def make_graph(scale: float, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    num = {t: max(2, int(n * scale)) for t, n in NODES.items()}
    x_dict = {t: torch.randn(n, DIM, generator=gen) for t, n in num.items()}
    edges = {}
    for src, rel, dst, count in RELATIONS:
        count = int(count * scale)
        ei = torch.stack([skewed_ids(count, num[src], gen), skewed_ids(count, num[dst], gen)])
        edges[(src, rel, dst)] = ei
        edges[reverse_edge_type((src, rel, dst))] = ei.flip(0)
    return x_dict, edges


def metadata(edges):
    return list(NODES), list(edges)


class Stack(torch.nn.Module):
    """Two dict-in/dict-out layers with a ReLU between them."""

    def __init__(self, first, second):
        super().__init__()
        self.first, self.second = first, second

    def forward(self, x_dict, adjacency):
        h = {t: v.relu() for t, v in self.first(x_dict, adjacency).items()}
        return self.second(h, adjacency)


def build(model: str, impl: str, meta):
    """The two-layer stack; PyG and ours share weights when built from the same seed."""
    from torch_geometric.nn import HeteroConv, SAGEConv
    from torch_geometric.nn import HGTConv as PygHGTConv

    torch.manual_seed(0)
    if model == "sage":
        pyg = [HeteroConv({et: SAGEConv((DIM, DIM), DIM) for et in meta[1]}, aggr="sum") for _ in range(2)]
        if impl == "pyg":
            return Stack(*pyg)
        ours = [RelSAGEConv(DIM, DIM, meta) for _ in range(2)]
        with torch.no_grad():
            for p, o in zip(pyg, ours):
                for et in meta[1]:
                    o.lin_rel[et].weight.copy_(p.convs[et].lin_l.weight)
                for t in meta[0]:
                    into = [p.convs[et] for et in meta[1] if et[2] == t]
                    o.lin_root[t].weight.copy_(sum(c.lin_r.weight for c in into))
                    o.lin_root[t].bias.copy_(sum(c.lin_l.bias for c in into))
        return Stack(*ours)
    pyg = [PygHGTConv(DIM, DIM, meta, heads=HEADS) for _ in range(2)]
    if impl == "pyg":
        return Stack(*pyg)
    ours = [HGTConv(DIM, DIM, meta, heads=HEADS) for _ in range(2)]
    num_rel = len(meta[1])
    with torch.no_grad():
        for p, o in zip(pyg, ours):
            for t in meta[0]:
                o.kqv[t].load_state_dict(p.kqv_lin.lins[t].state_dict())
                o.out_lin[t].load_state_dict(p.out_lin.lins[t].state_dict())
                o.skip[t].copy_(p.skip[t])
            for r, et in enumerate(meta[1]):
                o.p_rel[r].copy_(p.p_rel["__".join(et)][0])
                for h in range(HEADS):
                    o.k_rel[r, h].copy_(p.k_rel.weight[h * num_rel + r])
                    o.v_rel[r, h].copy_(p.v_rel.weight[h * num_rel + r])
    return Stack(*ours)


# ---------------------------------------------------------------------------------------------
# Measurement (inside a worker process)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def reset_peak(device) -> float:
    """Start a fresh peak-memory window; returns the current resident MB (CPU) or 0."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device) / 2**20
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS
    except OSError:
        pass
    return _status_mb("VmRSS")


def peak_mb(device, base: float) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20 - base
    hwm = _status_mb("VmHWM")
    if hwm is None:  # no /proc: the process's lifetime peak
        hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return hwm - base


def _status_mb(key: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def worker(variant: str, scale: float, device: torch.device, repeats: int) -> dict:
    if variant == "mean":
        return mean_workload(scale, device, repeats)
    model, impl = variant.split(":")  # e.g. "hgt:ours_csr"
    x_dict, edges = make_graph(scale)
    meta = metadata(edges)
    net = build(model, "pyg" if impl == "pyg" else "ours", meta).to(device)
    x_dict = {t: x.to(device) for t, x in x_dict.items()}
    edges = {et: ei.to(device) for et, ei in edges.items()}
    if impl == "ours_csr":
        adjacency = {et: to_csr(ei, x_dict[et[0]].size(0), x_dict[et[2]].size(0)) for et, ei in edges.items()}
    else:
        adjacency = edges
    if impl == "check":  # outputs of ours and PyG's with the same weights
        pyg = build(model, "pyg", meta).to(device)
        with torch.no_grad():
            a, b = net(x_dict, edges), pyg(x_dict, edges)
        return {"max_abs_diff": max(float((a[t] - b[t]).abs().max()) for t in b),
                "ref_max_abs": max(float(b[t].abs().max()) for t in b)}

    def step():
        out = net(x_dict, adjacency)
        sum(o.sum() for o in out.values()).backward()
        net.zero_grad(set_to_none=True)

    step()
    base = reset_peak(device)
    seconds = timed(step, device, repeats)
    return {"seconds": seconds, "peak_mb": peak_mb(device, base)}


def mean_workload(scale: float, device: torch.device, repeats: int) -> dict:
    gen = torch.Generator().manual_seed(1)
    num, count = int(MEAN_NODES * scale), int(MEAN_EDGES * scale)
    ei = torch.stack([skewed_ids(count, num, gen), skewed_ids(count, num, gen)]).to(device)
    x = torch.randn(num, DIM, generator=gen).to(device)
    csr = to_csr(ei, num, num)
    col = csr.col.long()
    buffer = torch.empty(count, DIM, device=device)
    ceiling = timed(lambda: torch.index_select(x, 0, col, out=buffer), device, repeats)
    ours = timed(lambda: aggregate(x, csr, "mean"), device, repeats)
    wide = dataclasses.replace(csr, ptr=csr.ptr.long(), col=csr.col.long())  # int64 indices
    ours_int64 = timed(lambda: aggregate(x, wide, "mean"), device, repeats)
    from torch_geometric.utils import scatter

    src, dst = ei
    pyg = timed(lambda: scatter(x[src], dst, 0, dim_size=num, reduce="mean"), device, repeats)
    reference = scatter(x[src], dst, 0, dim_size=num, reduce="mean")
    diff = float((aggregate(x, csr, "mean") - reference).abs().max())
    ref_max_abs = float(reference.abs().max())
    xg = x.clone().requires_grad_(True)
    ours_fb = timed(lambda: aggregate(xg, csr, "mean").sum().backward(), device, repeats)
    pyg_fb = timed(lambda: scatter(xg[src], dst, 0, dim_size=num, reduce="mean").sum().backward(),
                   device, repeats)
    return {"edges": count, "ceiling": ceiling, "ours": ours, "ours_int64": ours_int64, "pyg": pyg,
            "ours_fb": ours_fb, "pyg_fb": pyg_fb,
            "max_abs_diff": diff, "ref_max_abs": ref_max_abs}


def agreement(check: dict) -> dict:
    """The row fields of an output comparison: max_abs_diff, and status "failed" unless it agrees."""
    if "error" in check:
        return {"max_abs_diff": None, "status": "failed", "error": f"output check did not run: {check['error']}"}
    diff, tol = check["max_abs_diff"], ATOL + RTOL * check["ref_max_abs"]
    if not diff <= tol:  # also catches NaN
        return {"max_abs_diff": diff, "status": "failed",
                "error": f"outputs disagree with PyG: max |diff| {diff:.2e} > tolerance {tol:.2e}"}
    return {"max_abs_diff": diff, "status": "ok"}


# ---------------------------------------------------------------------------------------------
# Driver


def run_worker(variant: str, args) -> dict:
    cmd = [sys.executable, __file__, "--worker", variant, "--device", args.device,
           "--repeats", str(args.repeats)] + (["--quick"] if args.quick else [])
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        return {"error": lines[-1] if lines else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def model_rows(model: str, args) -> list[dict]:
    pyg = run_worker(f"{model}:pyg", args)
    check = run_worker(f"{model}:check", args)
    rows = []
    for impl, label in (("ours_csr", "csr"), ("ours_tensor", "edge_index")):
        ours = run_worker(f"{model}:{impl}", args)
        if "error" in ours or "error" in pyg:
            error = ours.get("error") or pyg.get("error")
            rows.append({"name": f"{model}_2layer_fwd_bwd[{label}]", "error": error})
            continue
        rows.append({
            "name": f"{model}_2layer_fwd_bwd[{label}]", "ours_s": ours["seconds"],
            "baseline": "pyg_heteroconv_sage" if model == "sage" else "pyg_hgtconv",
            "baseline_s": pyg["seconds"], "ratio": pyg["seconds"] / ours["seconds"],
            "ours_peak_mb": ours["peak_mb"], "baseline_peak_mb": pyg["peak_mb"],
            **agreement(check),
        })
    return rows


def mean_rows(args) -> list[dict]:
    m = run_worker("mean", args)
    if "error" in m:
        return [{"name": "mean_aggregate", "error": m["error"]}]
    rows = [
        {"name": "mean_aggregate_fwd", "ours_s": m["ours"], "baseline": "index_select_ceiling",
         "baseline_s": m["ceiling"], "ratio": m["ceiling"] / m["ours"],
         "ours_rows_per_s": m["edges"] / m["ours"], "ceiling_rows_per_s": m["edges"] / m["ceiling"]},
        {"name": "mean_aggregate_fwd", "ours_s": m["ours"], "baseline": "pyg_scatter_mean",
         "baseline_s": m["pyg"], "ratio": m["pyg"] / m["ours"], **agreement(m)},
        {"name": "mean_aggregate_fwd", "ours_s": m["ours"], "baseline": "ours_int64_indices",
         "baseline_s": m["ours_int64"], "ratio": m["ours_int64"] / m["ours"]},
        {"name": "mean_aggregate_fwd_bwd", "ours_s": m["ours_fb"], "baseline": "pyg_scatter_mean",
         "baseline_s": m["pyg_fb"], "ratio": m["pyg_fb"] / m["ours_fb"]},
    ]
    return rows


def print_table(rows: list[dict], header: str) -> None:
    print(header)
    print(f"{'name':34} {'ours_s':>9} {'baseline':>22} {'baseline_s':>10} {'ratio':>7} {'ours_MB':>8} "
          f"{'base_MB':>8} {'diff':>8}")
    for r in rows:
        if r.get("ours_s") is None:
            print(f"{r['name']:34} ERROR {r['error']}")
            continue
        mb = lambda k: f"{r[k]:8.0f}" if r.get(k) is not None else f"{'':8}"  # noqa: E731
        diff = f"{r['max_abs_diff']:8.1e}" if r.get("max_abs_diff") is not None else ""
        print(f"{r['name']:34} {r['ours_s']:9.4f} {r['baseline']:>22} {r['baseline_s']:10.4f} "
              f"{r['ratio']:7.2f} "
              f"{mb('ours_peak_mb')} {mb('baseline_peak_mb')} {diff:>8}")
        if r.get("status") == "failed":
            print(f"{'':34} DISAGREE: {r['error']}")
        if "ours_rows_per_s" in r:
            print(f"{'':34} {r['ours_rows_per_s'] / 1e6:.1f}M rows/s = {100 * r['ratio']:.0f}% of the "
                  f"{r['ceiling_rows_per_s'] / 1e6:.1f}M rows/s gather ceiling")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="every size divided by 10")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions (best is reported)")
    parser.add_argument("--threads", type=int, help="CPU threads per variant (default: torch's)")
    parser.add_argument("--only", choices=["sage", "hgt", "mean"], action="append", help="run only these")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    scale = 0.1 if args.quick else 1.0
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        print(json.dumps(worker(args.worker, scale, device, args.repeats)))
        return
    rows = []
    for workload in args.only or ["sage", "hgt", "mean"]:
        rows += mean_rows(args) if workload == "mean" else model_rows(workload, args)
    nodes = sum(int(n * scale) for n in NODES.values())
    edges = 2 * sum(int(c * scale) for *_, c in RELATIONS)
    print_table(rows, f"{nodes:,} nodes, {edges:,} edges, d={DIM}, device={device}, "
                      f"threads={torch.get_num_threads()}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    failed = [r["name"] for r in rows if r.get("status") == "failed"]
    if failed:
        sys.exit(f"FAILED (outputs disagree with the baseline): {', '.join(failed)}")


if __name__ == "__main__":
    main()
