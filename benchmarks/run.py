"""Run the speed workloads side by side, each in its own process, and print one table.

    python benchmarks/run.py [--quick] [--json FILE] [--device D] [--only NAME,...]

Each workload is a standalone script in this folder, run as
`python benchmarks/NAME.py --json TMP [--quick] [--device D]`; its rows
`{"name", "ours_s", "baseline", "baseline_s", "ratio", ...}` are merged, with `workload`,
`status`, the process's own peak RSS (`peak_rss_mb`), its wall time and the load average at its
start added. A workload that is missing, crashes, times out or writes no rows becomes one row
with `status: "failed"` and the error; the others still run, and the exit status is 1.

Workloads: ranking, hetero_layer, train_step, trim_step, sampler_pyg, encode_media (`WORKLOADS`; add a new speed
script there). Other scripts here (quality.py: hours of training, datasets.py: a helper) are
not speed workloads and are never run by this driver.
`--quick` caps each workload at 150 s and the whole run at 285 s (a workload that does not get
its turn is reported as skipped), so it ends within 5 minutes.

Threads: the workloads get `OMP_WAIT_POLICY=PASSIVE` unless the environment sets it. On a busy
shared machine, OpenMP workers that spin while waiting for a taken core made many small torch
ops crawl (the quick sampling step: 0.14 s with one thread, 3.3 s with two spinning ones, 0.11 s
with two passive ones). `--threads N` also fixes OMP_NUM_THREADS / MKL_NUM_THREADS.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import failed_row, format_table, load_average, read_rows, run_process, write_rows  # noqa: E402

WORKLOADS = ("ranking", "hetero_layer", "train_step", "trim_step", "sampler_pyg", "encode_media")
QUICK_LIMITS = (150.0, 285.0)          # seconds per workload, for the whole run
FULL_LIMITS = (3600.0, None)


def find_workloads(folder: Path) -> dict[str, Path]:
    """Every speed workload's script in `folder`, in the fixed order (a missing one is still listed)."""
    return {name: folder / f"{name}.py" for name in WORKLOADS}


def takes_device(script: Path) -> bool:
    """Whether the script declares a --device option (reading it is cheaper than importing torch)."""
    return '"--device"' in script.read_text(errors="replace")


def last_error_line(stderr: str) -> str:
    """The line that says what went wrong: the last non-empty line of a traceback or message."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output on stderr)"


def workload_env(threads: int | None) -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def run_workload(name: str, script: Path, *, quick: bool, device: str | None, timeout: float,
                 repo: Path, env: dict[str, str]) -> list[dict]:
    """Run one workload script in a subprocess and return its rows, or one failed row."""
    extra = {"loadavg_1m": load_average()}
    if not script.is_file():
        return [{"workload": name, **failed_row(name, f"{script} does not exist"), **extra}]
    note = None
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        out = Path(tmp) / "rows.json"
        cmd = [sys.executable, str(script), "--json", str(out)] + (["--quick"] if quick else [])
        if device is not None:
            if takes_device(script):
                cmd += ["--device", device]
            elif device != "cpu":
                note = f"{script.name} has no --device option: ran on its default device"
        result = run_process(cmd, timeout=timeout, cwd=repo, env=env)
        measured = {"peak_rss_mb": None if result.peak_rss_mb is None else round(result.peak_rss_mb, 1),
                    "wall_s": round(result.wall_s, 2)}
        if result.timed_out:
            error = f"timed out after {timeout:.0f} s"
        elif result.returncode != 0:
            error = f"exit {result.returncode}: {last_error_line(result.stderr)}"
        elif not out.is_file():
            error = "exited 0 but wrote no --json rows"
        else:
            try:
                rows = read_rows(out)
                error = None if rows else "wrote an empty list of rows"
            except ValueError as e:
                error = str(e).replace(str(out), "its --json file")
        if error is not None:
            tail = "\n".join(result.stderr.strip().splitlines()[-15:])
            print(f"[run] {name} FAILED: {error}" + (f"\n{tail}" if tail else ""), file=sys.stderr)
            return [{"workload": name, **failed_row(name, error), **extra, **measured}]
    print(f"[run] {name}: {len(rows)} rows in {result.wall_s:.1f} s", file=sys.stderr)
    return [{"workload": name, **row, "status": row.get("status", "ok"), **extra, **measured,
             **({"note": note} if note else {})} for row in rows]


def environment(device: str | None, env: dict[str, str]) -> str:
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = "not installed"
    return (f"python {platform.python_version()}, torch {torch_version}, {os.cpu_count()} CPUs, "
            f"load average {load_average()}, device {device or 'each script default'}, "
            f"OMP_WAIT_POLICY={env['OMP_WAIT_POLICY']}, threads {env.get('OMP_NUM_THREADS', 'default')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small workloads; the whole run ends within 5 minutes")
    parser.add_argument("--json", type=Path, help="write the merged rows to this file")
    parser.add_argument("--device", default=None, help="passed to every workload that takes --device")
    parser.add_argument("--only", default=None, help="comma-separated workload names")
    parser.add_argument("--timeout", type=float, default=None,
                        help=f"seconds per workload (default {QUICK_LIMITS[0]:.0f} quick, {FULL_LIMITS[0]:.0f} full)")
    parser.add_argument("--budget", type=float, default=None,
                        help=f"seconds for the whole run (default {QUICK_LIMITS[1]:.0f} quick, none full)")
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for every workload")
    parser.add_argument("--workload-dir", type=Path, default=Path(__file__).resolve().parent,
                        help="folder holding the workload scripts (default: this one)")
    parser.add_argument("--list", action="store_true", help="print the workload names and exit")
    args = parser.parse_args(argv)

    workloads = find_workloads(args.workload_dir)
    if args.list:
        print("\n".join(f"{n}\t{p}{'' if p.is_file() else '  (missing)'}" for n, p in workloads.items()))
        return 0
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in workloads]
        if unknown:
            parser.error(f"--only: unknown workload(s) {', '.join(unknown)}; known: {', '.join(workloads)}")
        workloads = {n: workloads[n] for n in names}
    per_workload, budget = QUICK_LIMITS if args.quick else FULL_LIMITS
    per_workload = args.timeout or per_workload
    budget = args.budget or budget

    env = workload_env(args.threads)
    print(f"[run] {environment(args.device, env)}", file=sys.stderr)
    repo = Path(__file__).resolve().parents[1]
    start, rows = time.perf_counter(), []
    for name, script in workloads.items():
        left = None if budget is None else budget - (time.perf_counter() - start)
        if left is not None and left < 5:
            rows.append({"workload": name, **failed_row(name, f"skipped: the {budget:.0f} s budget was spent")})
            continue
        timeout = per_workload if left is None else min(per_workload, left)
        rows += run_workload(name, script, quick=args.quick, device=args.device, timeout=timeout, repo=repo, env=env)

    print(format_table(rows))
    failed = [r["workload"] for r in rows if r.get("status") == "failed"]
    print(f"\n{len(rows)} rows from {len(workloads)} workloads in {time.perf_counter() - start:.0f} s; "
          f"load average now {load_average()} (a shared machine: timings are noisy)"
          + (f"; FAILED: {', '.join(dict.fromkeys(failed))}" if failed else ""))
    if args.json:
        write_rows(args.json, rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
