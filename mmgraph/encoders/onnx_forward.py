"""Run a packaged torch model's forward with onnxruntime on CPU, with torch as the fallback.

The model is exported once per weights fingerprint and torch version into the ONNX folder
(`$MMGRAPH_ONNX_DIR`, else `~/.cache/mmgraph/onnx`); later processes load the file. Exporting
needs the `onnx` package (a dependency); without it, or when the export or the session
fails, `onnx_session` returns None and the caller runs its torch forward. The outputs equal
torch's to float rounding (EfficientNet-Lite0: max abs diff ~7e-6 on features of size ~1).

`MMGRAPH_FORWARD=torch` forces the torch path, `=onnxruntime` makes a failure to build the
session an error instead of a silent fallback (default `auto`).
"""
from __future__ import annotations

import functools
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from mmgraph.errors import InputError

log = logging.getLogger("mmgraph.encoders")


def forward_backend() -> str:
    choice = os.environ.get("MMGRAPH_FORWARD", "auto").strip().lower() or "auto"
    if choice not in ("auto", "torch", "onnxruntime"):
        raise InputError(f"MMGRAPH_FORWARD must be auto, torch or onnxruntime, got {choice!r}")
    return choice


def onnx_folder() -> Path:
    return Path(os.environ.get("MMGRAPH_ONNX_DIR") or Path.home() / ".cache" / "mmgraph" / "onnx")


def _export(module: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".onnx.part", dir=path.parent)
    os.close(fd)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's shape-inference chatter
            torch.onnx.export(module.eval(), (example,), tmp, dynamo=False, input_names=["x"],
                              output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
                              opset_version=17)
        os.replace(tmp, path)  # atomic: a concurrent process sees the whole file or none
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _session(path: str, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Spinning workers steal the cores the loader threads decode on (cf. OMP_WAIT_POLICY=PASSIVE).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


class SessionGroup:
    """`workers` one-thread onnxruntime sessions of one model, run side by side on shares of a
    batch's rows (each share in `chunk`-row calls), the outputs in the rows' order; a batch of
    one row goes through one session with `workers` threads instead.

    Small convolution nets keep a second intra-op thread half idle (depthwise layers are memory-
    bound): EfficientNet-Lite0 on 2 cores took 6.5 ms an image through one 2-thread session and
    5.4 ms through two one-thread sessions at once (2026-12-04), with the same features.
    """

    def __init__(self, path: str, workers: int):
        self.path = path
        self.workers = max(1, int(workers))
        self.sessions = [_session(path, 1) for _ in range(self.workers)]
        self._whole = self.sessions[0] if self.workers == 1 else _session(path, self.workers)
        self._pool = None
        if self.workers > 1:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="mmgraph-onnx")

    def run(self, x: torch.Tensor, chunk: int = 1) -> torch.Tensor:
        """[B, ...] float32 input -> the model's single output [B, ...] as a float32 tensor."""
        array = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)

        def share(session, part: np.ndarray) -> list[np.ndarray]:
            return [session.run(None, {"x": part[i:i + chunk]})[0] for i in range(0, len(part), chunk)]

        parts = [p for p in np.array_split(array, min(self.workers, len(array))) if len(p)] if len(array) else []
        if self._pool is None or len(parts) < 2:
            outs = share(self._whole, array)
        else:
            outs = [o for f in [self._pool.submit(share, s, p) for s, p in zip(self.sessions, parts)] for o in f.result()]
        if not outs:
            return torch.from_numpy(self._whole.run(None, {"x": array})[0])
        return torch.from_numpy(np.concatenate(outs))


def onnx_session(name: str, fingerprint: str, build: Callable[[], torch.nn.Module],
                 example: torch.Tensor) -> SessionGroup | None:
    """Onnxruntime sessions for `build()`'s forward, one a torch thread, or None (then run torch).

    `build` is called only when the file must be exported.
    """
    backend = forward_backend()
    if backend == "torch":
        return None
    version = torch.__version__.split("+")[0]
    path = onnx_folder() / f"{name}-{fingerprint.replace(':', '-')}-torch{version}.onnx"
    try:
        if not path.is_file():
            import onnx  # noqa: F401  (the exporter needs it; a clear ImportError otherwise)

            with torch.no_grad():
                _export(build(), example, path)
        return _group(str(path), torch.get_num_threads())
    except Exception as e:  # noqa: BLE001 - any failure falls back to the torch forward
        if backend == "onnxruntime":
            raise InputError(f"{name}: cannot run with onnxruntime ({type(e).__name__}: {e})") from e
        log.debug("%s: onnxruntime forward unavailable (%s: %s); using torch", name, type(e).__name__, e)
        return None


@functools.lru_cache(maxsize=8)
def _group(path: str, workers: int) -> SessionGroup:
    return SessionGroup(path, workers)
