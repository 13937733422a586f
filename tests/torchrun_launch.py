"""Launch `python -m mmgraph ...` (or a script) under torchrun as a subprocess, for the data-parallel tests."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def torchrun(args: list[str], *, nproc: int = 2, cwd: Path, timeout: float = 180,
             script: Path | None = None) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc-per-node=NPROC -m mmgraph ARGS` on CPU (gloo); with `script`,
    `torchrun ... SCRIPT ARGS` instead.

    `--standalone` lets the rendezvous pick a free port, so parallel test runs never collide.
    """
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE", HF_HUB_OFFLINE="1", CUDA_VISIBLE_DEVICES="")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           *([str(script)] if script is not None else ["-m", "mmgraph"]), *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def check(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    """The result, or a failure that shows what the ranks printed."""
    assert result.returncode == 0, (f"torchrun exited {result.returncode}\n--- stdout\n{result.stdout[-4000:]}"
                                    f"\n--- stderr\n{result.stderr[-4000:]}")
    return result
