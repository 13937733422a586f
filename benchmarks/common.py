"""Shared helpers of the benchmark scripts: timing, peak memory, the JSON row format, a table.

Every workload script writes a list of rows (`--json FILE`), one per comparison:

    {"name": str, "ours_s": float, "baseline": str, "baseline_s": float, "ratio": float, ...}

`ratio = baseline_s / ours_s` (above 1: ours is faster); a script may add keys of its own.
`benchmarks/run.py` adds `workload`, `status` ("ok" or "failed"), `error`, `peak_rss_mb` and
`wall_s` when it merges the rows of several scripts.

    from common import time_it, make_row, write_rows
    t = time_it(lambda: work(), warmup=1, repeat=5)            # median of 5 after 1 warm-up
    write_rows(path, [make_row("spmm", t.median_s, "torch.sparse", base.median_s)])
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

REQUIRED_KEYS = ("name", "ours_s", "baseline", "baseline_s", "ratio")

__all__ = ["REQUIRED_KEYS", "Timing", "ProcessResult", "add_standard_args", "time_it", "time_two_phases",
           "synchronize",
           "peak_rss_mb", "run_process", "make_row", "failed_row", "write_rows", "print_rows", "read_rows",
           "format_table", "load_average"]


# --- command line ----------------------------------------------------------------------------
def add_standard_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options every workload script takes: --quick, --device, --json."""
    parser.add_argument("--quick", action="store_true", help="a smaller workload (minutes, not tens)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:i (default cpu)")
    parser.add_argument("--json", type=Path, help="write the result rows to this file")
    return parser


# --- timing ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds of the timed repeats (warm-up runs excluded)."""

    times: tuple[float, ...]

    @property
    def median_s(self) -> float:
        return statistics.median(self.times)

    @property
    def min_s(self) -> float:
        return min(self.times)


def synchronize(device: Any = None) -> None:
    """Wait for queued CUDA work so that a timer stops when the work is really done."""
    if device is not None and str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


def time_it(fn: Callable[[], Any], *, warmup: int = 1, repeat: int = 5, device: Any = None) -> Timing:
    """Run `fn` `warmup` times untimed (caches, allocator, lazy init), then `repeat` times timed."""
    if repeat < 1 or warmup < 0:
        raise ValueError(f"time_it: repeat must be >= 1 and warmup >= 0, got {repeat}, {warmup}")
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return Timing(tuple(times))


def time_two_phases(first: Callable[[], Any], second: Callable[[Any], Any], *, warmup: int = 1,
                    repeat: int = 5, device: Any = None) -> tuple[Timing, Timing]:
    """Time `second(first())`: the first phase alone and both together, measured in the same runs
    (e.g. sampling a batch, then the whole training step on it)."""
    if repeat < 1 or warmup < 0:
        raise ValueError(f"time_two_phases: repeat must be >= 1 and warmup >= 0, got {repeat}, {warmup}")
    for _ in range(warmup):
        second(first())
    synchronize(device)
    firsts, totals = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        out = first()
        synchronize(device)
        mid = time.perf_counter()
        second(out)
        synchronize(device)
        firsts.append(mid - start)
        totals.append(time.perf_counter() - start)
    return Timing(tuple(firsts)), Timing(tuple(totals))


# --- memory and processes --------------------------------------------------------------------
def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports ru_maxrss in KiB)."""
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 1024 ** 2
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def load_average() -> float | None:
    """The 1-minute load average (how busy the shared machine was), None where unknown."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


@dataclass(frozen=True)
class ProcessResult:
    returncode: int | None        # None: killed after the timeout
    stdout: str
    stderr: str
    wall_s: float
    peak_rss_mb: float | None     # the child's own peak resident memory (see run_process)

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


def run_process(cmd: Sequence[str], *, timeout: float, cwd: str | os.PathLike | None = None,
                env: dict[str, str] | None = None, echo_stderr: bool = False) -> ProcessResult:
    """Run `cmd` in its own process group and measure its own peak RSS.

    `wait4` gives that process's ru_maxrss (not the largest of all children so far, as
    RUSAGE_CHILDREN would), but Linux counts in it the RSS the child inherited at fork, before
    exec: the driver's own size. So when ru_maxrss does not exceed the driver's peak, the answer
    is the child's VmHWM (peak since exec), read from /proc while it runs.

    After `timeout` seconds the whole group is killed and `returncode` is None. Output goes to
    temporary files (no pipe can fill up and block the child); with `echo_stderr` the child's
    stderr is also passed through live, for progress.
    """
    own_peak = peak_rss_mb()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(cmd), cwd=cwd, env=env, stdout=out,
                                stderr=None if echo_stderr else err, start_new_session=True)
        status, usage, hwm = 0, None, None
        try:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                hwm = _vm_hwm_mb(proc.pid) or hwm
                if time.perf_counter() - start > timeout:
                    os.killpg(proc.pid, signal.SIGKILL)
                    _, status, usage = os.wait4(proc.pid, 0)
                    status = None
                    break
                time.sleep(0.05)
        except BaseException:  # Ctrl-C: the child has its own session, so stop it here
            os.killpg(proc.pid, signal.SIGKILL)
            os.wait4(proc.pid, 0)
            raise
        wall = time.perf_counter() - start
        proc.returncode = 0  # reaped by wait4 above; stop Popen from waiting on it again
        out.seek(0)
        err.seek(0)
        scale = 1 / 1024 if sys.platform != "darwin" else 1 / 1024 ** 2
        code = None if status is None else os.waitstatus_to_exitcode(status)
        peak = usage.ru_maxrss * scale if usage is not None else None
        # A reading taken in the instant of exec can be a few KiB: only a real one replaces ru_maxrss.
        if peak is not None and peak <= own_peak and hwm is not None and hwm >= 1.0:
            peak = hwm
        return ProcessResult(code, out.read(), "" if echo_stderr else err.read(), wall, peak)


def _vm_hwm_mb(pid: int) -> float | None:
    """A live process's peak RSS since its exec (Linux /proc), None where unreadable."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


# --- rows ------------------------------------------------------------------------------------
def make_row(name: str, ours_s: float, baseline: str, baseline_s: float, **extra: Any) -> dict:
    """One comparison; `ratio = baseline_s / ours_s` (> 1: ours is faster)."""
    ratio = round(baseline_s / ours_s, 3) if ours_s > 0 else None   # JSON has no infinity
    return {"name": name, "ours_s": round(ours_s, 4), "baseline": baseline,
            "baseline_s": round(baseline_s, 4), "ratio": ratio, **extra}


def failed_row(name: str, error: str, **extra: Any) -> dict:
    """A workload that produced no measurement, with the reason."""
    return {"name": name, "ours_s": None, "baseline": None, "baseline_s": None, "ratio": None,
            "status": "failed", "error": error, **extra}


def write_rows(path: str | os.PathLike, rows: list[dict]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=2) + "\n")


def print_rows(rows: list[dict], width: int = 18) -> None:
    """One line a row on stderr: name, ours, the baseline, the ratio."""
    for row in rows:
        print(f"{row['name']:<{width}} ours {row['ours_s']:.3f} s  {row['baseline']} {row['baseline_s']:.3f} s  "
              f"ratio {row['ratio']}", file=sys.stderr)


def read_rows(path: str | os.PathLike) -> list[dict]:
    """Rows written by a workload script; ValueError naming the file and row when malformed."""
    try:
        rows = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a readable JSON file ({e})") from None
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a list of rows, got {type(rows).__name__}")
    for i, row in enumerate(rows, 1):
        missing = [k for k in REQUIRED_KEYS if not isinstance(row, dict) or k not in row]
        if missing:
            raise ValueError(f"{path}: row {i} lacks {', '.join(missing)}")
    return rows


def _cell(value: Any, digits: int) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def format_table(rows: list[dict]) -> str:
    """A plain-text table: workload, name, baseline, seconds, ratio, peak memory, notes."""
    header = ["workload", "name", "baseline", "ours_s", "baseline_s", "ratio", "peak_MB", "note"]
    lines = []
    for row in rows:
        note = row.get("error") or row.get("note") or ""
        lines.append([str(row.get("workload", "")), str(row["name"]), _cell(row["baseline"], 3),
                      _cell(row["ours_s"], 3), _cell(row["baseline_s"], 3), _cell(row["ratio"], 2),
                      _cell(row.get("peak_rss_mb"), 0), note.replace("\n", " ")[:100]])
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h)
              for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths[:-1]) + "  {}"
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*line) for line in lines]
    return "\n".join(s.rstrip() for s in out)


def load_bench_datasets():
    """benchmarks/datasets.py by path, under its own name (never shadowing Hugging Face `datasets`)."""
    import importlib.util

    name = "mmgraph_bench_datasets"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("datasets.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
