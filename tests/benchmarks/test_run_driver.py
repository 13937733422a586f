"""benchmarks/run.py: failing, missing, silent and hanging workloads become failed rows; rows merge.

The workloads here are tiny fake scripts in tmp_path under the real workload names (no torch),
so the whole file runs in seconds.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))
from common import (format_table, make_row, read_rows, run_process,  # noqa: E402
                    time_two_phases)

GOOD = """
    import argparse, json, os, sys
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true"); p.add_argument("--device"); p.add_argument("--json")
    a = p.parse_args()
    rows = [{"name": "fake", "ours_s": 1.0, "baseline": "slow", "baseline_s": 2.0, "ratio": 2.0,
             "quick": a.quick, "device_seen": a.device, "omp": [os.environ.get("OMP_WAIT_POLICY"),
             os.environ.get("OMP_NUM_THREADS")]}]
    open(a.json, "w").write(json.dumps(rows))
"""


def write_script(folder: Path, name: str, body: str) -> None:
    (folder / f"{name}.py").write_text(textwrap.dedent(body))


def run_driver(folder: Path, *args: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    out = folder / "merged.json"
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    proc = subprocess.run([sys.executable, str(BENCH / "run.py"), "--workload-dir", str(folder),
                           "--json", str(out), *args], capture_output=True, text=True, timeout=60, env=env)
    return proc, json.loads(out.read_text())


def test_failed_missing_and_silent_workloads_are_rows_and_the_rest_still_run(tmp_path):
    write_script(tmp_path, "ranking", 'raise SystemExit("bad workload: the kernel exploded")\n')
    write_script(tmp_path, "hetero_layer", "pass\n")        # exits 0, writes nothing
    write_script(tmp_path, "train_step", GOOD)
    write_script(tmp_path, "trim_step", GOOD)
    write_script(tmp_path, "sampler_pyg", GOOD)
    # encode_media.py is missing
    proc, rows = run_driver(tmp_path, "--quick", "--device", "cpu")

    assert proc.returncode == 1
    by_name = {r["workload"]: r for r in rows}
    assert list(by_name) == ["ranking", "hetero_layer", "train_step", "trim_step", "sampler_pyg", "encode_media"]
    good = by_name["train_step"]
    assert (good["status"], good["name"], good["ratio"], good["baseline"]) == ("ok", "fake", 2.0, "slow")
    assert good["quick"] is True and good["device_seen"] == "cpu"      # options were passed through
    assert good["peak_rss_mb"] > 0 and good["wall_s"] > 0
    bad = by_name["ranking"]
    assert bad["status"] == "failed" and bad["ours_s"] is None
    assert bad["error"] == "exit 1: bad workload: the kernel exploded"
    assert by_name["hetero_layer"]["error"] == "exited 0 but wrote no --json rows"
    missing = by_name["encode_media"]
    assert missing["status"] == "failed" and "does not exist" in missing["error"]
    # the printed table carries every workload, and the summary names the failures
    assert "the kernel exploded" in proc.stdout
    assert "FAILED: ranking, hetero_layer, encode_media" in proc.stdout


def test_a_hanging_workload_is_killed_at_its_timeout(tmp_path):
    write_script(tmp_path, "hetero_layer", "import time\ntime.sleep(60)\n")
    write_script(tmp_path, "train_step", GOOD)
    proc, rows = run_driver(tmp_path, "--only", "hetero_layer,train_step", "--timeout", "1")
    assert [r["status"] for r in rows] == ["failed", "ok"]
    assert rows[0]["error"] == "timed out after 1 s"


def test_all_ok_exits_zero_and_unknown_only_is_a_usage_error(tmp_path):
    write_script(tmp_path, "train_step", GOOD)
    proc, rows = run_driver(tmp_path, "--only", "train_step")
    assert proc.returncode == 0 and rows[0]["device_seen"] is None   # no --device given, none passed
    assert rows[0]["omp"] == ["PASSIVE", None]                     # no spinning workers; threads as is
    _, rows = run_driver(tmp_path, "--only", "train_step", "--threads", "1")
    assert rows[0]["omp"] == ["PASSIVE", "1"]
    bad = subprocess.run([sys.executable, str(BENCH / "run.py"), "--workload-dir", str(tmp_path),
                          "--only", "quality"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unknown workload(s) quality" in bad.stderr


def test_malformed_rows_are_reported_with_the_row_number(tmp_path):
    path = tmp_path / "rows.json"
    path.write_text(json.dumps([make_row("a", 1.0, "b", 3.0), {"name": "x", "ours_s": 1.0}]))
    with pytest.raises(ValueError, match="row 2 lacks baseline, baseline_s, ratio"):
        read_rows(path)
    assert make_row("a", 2.0, "b", 1.0)["ratio"] == 0.5
    assert make_row("a", 0.0, "b", 1.0)["ratio"] is None          # JSON has no infinity


def test_peak_memory_is_the_child_process_own():
    # the children live a moment, so that /proc is read while they run (a big pytest process
    # makes ru_maxrss useless: it counts what the child inherited at fork)
    big = run_process([sys.executable, "-c", "import time; b = b'x' * (300 * 2**20); time.sleep(0.5)"],
                      timeout=30)
    small = run_process([sys.executable, "-c", "import time; time.sleep(0.5)"], timeout=30)
    assert big.returncode == 0 and 290 < big.peak_rss_mb < 400
    assert small.peak_rss_mb < 100     # neither the earlier big child's nor this process's size


def test_two_phase_timing_and_table():
    calls = []
    first, total = time_two_phases(lambda: calls.append("a") or 1, lambda x: calls.append(x), warmup=1, repeat=3)
    assert calls == ["a", 1] * 4 and len(first.times) == len(total.times) == 3
    assert all(f <= t for f, t in zip(first.times, total.times))
    table = format_table([{"workload": "w", **make_row("n", 1.0, "base", 2.0)},
                          {"workload": "v", "name": "v", "ours_s": None, "baseline": None, "baseline_s": None,
                           "ratio": None, "error": "boom"}])
    lines = table.splitlines()
    assert lines[0].split() == ["workload", "name", "baseline", "ours_s", "baseline_s", "ratio", "peak_MB", "note"]
    assert lines[2].split()[:6] == ["w", "n", "base", "1.000", "2.000", "2.00"]
    assert lines[3].split() == ["v", "v", "-", "-", "-", "-", "-", "boom"]
