"""Data parallelism over `torch.distributed`: which process am I, what is my share, and agreeing.

`torchrun --nproc-per-node=N -m mmgraph ...` starts N copies of the command with RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT in their environment. `setup(device)` reads
them, joins the process group (gloo on CPU, NCCL on CUDA with device `cuda:LOCAL_RANK`) and
makes the context `current()`, so library code (`fit`, `build_graph`) asks `current()` instead
of threading a rank through every call. Without torchrun (or with WORLD_SIZE=1) the context is
a single process: `shard` returns its input, `broadcast` its argument, `wrap` calls the step
directly, so single-process results stay bit for bit what they were.

Only rank 0 writes outputs and prints progress; `setup` silences the others.

Example::

    with session(torch.device("cpu")) as ctx:      # under torchrun: rank/world from the environment
        mine = ctx.shard(torch.arange(10))         # rank 1 of 2 -> tensor([5, 6, 7, 8, 9])
        total = ctx.all_reduce_sum(torch.tensor([float(mine.sum())]))
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import torch
from torch import Tensor

from mmgraph.errors import InputError

log = logging.getLogger("mmgraph")

# torchrun's contract: these name the process in its group.
ENV_RANK, ENV_WORLD, ENV_LOCAL_RANK = "RANK", "WORLD_SIZE", "LOCAL_RANK"


def shard_bounds(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """`[start, stop)` of `rank`'s contiguous share of `n` items.

    Shares are disjoint, cover `0..n-1` in rank order, and differ in size by at most one (the
    first `n % world_size` ranks take one more), the same split as `Tensor.tensor_split`.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in a group of {world_size}")
    base, extra = divmod(n, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def launched_world_size(environ: dict | None = None) -> int:
    """WORLD_SIZE set by torchrun (1 when not launched by it)."""
    environ = os.environ if environ is None else environ
    try:
        return int(environ.get(ENV_WORLD, "1"))
    except ValueError:
        raise InputError(f"{ENV_WORLD}={environ.get(ENV_WORLD)!r}: not a number") from None


@dataclass(frozen=True)
class DistContext:
    """This process's place in the group; a single process when `world_size == 1`."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def bounds(self, n: int) -> tuple[int, int]:
        return shard_bounds(n, self.rank, self.world_size)

    def shard(self, tensor: Tensor, dim: int = 0) -> Tensor:
        """This rank's contiguous share of `tensor` along `dim` (a view; the tensor itself alone)."""
        if not self.distributed:
            return tensor
        start, stop = self.bounds(tensor.size(dim))
        return tensor.narrow(dim, start, stop - start)

    def share_weight(self, n: int) -> float:
        """`world_size * len(my share) / n`: a mean over my share of n items times this weight,
        averaged over ranks (as DDP averages gradients), is the mean over all n, also when the
        shares differ in size. 1.0 for one process.
        """
        if not self.distributed or n == 0:
            return 1.0
        start, stop = self.bounds(n)
        return self.world_size * (stop - start) / n

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's `obj` on every rank (any picklable object; the others pass anything).

        Tensors inside arrive on the CPU (a CUDA tensor would otherwise land on rank 0's GPU).
        """
        if not self.distributed:
            return obj
        box = [_to_cpu(obj) if self.is_main else None]
        torch.distributed.broadcast_object_list(box, src=0, device=self._comm_device())
        return box[0]

    def all_gather(self, obj: Any) -> list:
        """Every rank's `obj`, in rank order, on every rank."""
        if not self.distributed:
            return [obj]
        out: list = [None] * self.world_size
        torch.distributed.all_gather_object(out, obj)
        return out

    def all_reduce_sum(self, tensor: Tensor) -> Tensor:
        """The sum of `tensor` over ranks (in place on distributed runs, returned either way)."""
        if self.distributed:
            moved = tensor.to(self._comm_device())
            torch.distributed.all_reduce(moved)
            tensor.copy_(moved)
        return tensor

    def mean(self, *values: float) -> tuple[float, ...]:
        """Each number averaged over ranks (e.g. the epoch's loss for the log)."""
        if not self.distributed:
            return values
        t = self.all_reduce_sum(torch.tensor(values, dtype=torch.float64))
        return tuple((t / self.world_size).tolist())

    def on_main(self, fn: Callable[[], Any]) -> Any:
        """`fn()` on rank 0 only; its result, or the error it raised, reaches every rank.

        For checks and reads of rank 0's files (the output folder, a checkpoint): every rank
        then fails the same way instead of waiting for a rank that has already exited.
        """
        if not self.distributed:
            return fn()
        outcome, error = None, None
        if self.is_main:
            try:
                outcome = ("ok", fn())
            except InputError as e:
                outcome, error = ("input", str(e)), e
            except Exception as e:  # noqa: BLE001 - re-raised below on every rank
                outcome, error = ("error", f"{type(e).__name__}: {e}"), e
        kind, value = self.broadcast(outcome)
        if error is not None:
            raise error
        if kind == "input":
            raise InputError(value)
        if kind == "error":
            raise RuntimeError(f"rank 0 failed: {value}")
        return value

    def barrier(self) -> None:
        if self.distributed:
            torch.distributed.barrier()

    def generator_for_rank(self, generator: torch.Generator) -> torch.Generator:
        """A generator for this rank's own draws (negatives of its share), forked from a shared one.

        Seeded from the shared generator's state without drawing from it, so the shared stream
        (the epochs' splits) stays what one process would draw; one process gets `generator` itself.
        """
        if not self.distributed:
            return generator
        digest = hashlib.sha256(generator.get_state().numpy().tobytes()).digest()
        return torch.Generator().manual_seed(int.from_bytes(digest[:7], "little") + self.rank)

    def wrap(self, model: torch.nn.Module) -> "StepRunner":
        """Run training steps of `model` so that their gradients are averaged over ranks."""
        return StepRunner(model, self)

    def _comm_device(self) -> torch.device:
        # NCCL moves objects through the GPU; gloo through the CPU.
        return self.device if self.device.type == "cuda" else torch.device("cpu")


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)) and not hasattr(obj, "_fields"):
        return type(obj)(_to_cpu(v) for v in obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.replace(obj, **{f.name: _to_cpu(getattr(obj, f.name))
                                           for f in dataclasses.fields(obj) if f.init})
    return obj


class _StepModule(torch.nn.Module):
    """`forward(fn)` is `fn(model)`: the whole step happens inside DDP's forward.

    DDP averages gradients only for work done in its `forward`; the link predictor is used
    through `embed`, `score` and friends, so the step function is what runs there.
    """

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, fn: Callable[[torch.nn.Module], Any]) -> Any:
        return fn(self.model)


class StepRunner:
    """`runner(step)` computes `step(model)`; across ranks, inside `DistributedDataParallel`.

    Parameters a rank leaves unused in a step (a relation with no supervision edges in its
    share) are allowed (`find_unused_parameters=True`).
    """

    def __init__(self, model: torch.nn.Module, ctx: DistContext):
        self.model = model
        self.ctx = ctx
        self._forward: torch.nn.Module = _StepModule(model)
        if ctx.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [ctx.device.index] if ctx.device.type == "cuda" else None
            self._forward = DistributedDataParallel(self._forward, device_ids=ids, find_unused_parameters=True)

    def __call__(self, step: Callable[[torch.nn.Module], Any]) -> Any:
        return self._forward(step)

    def __repr__(self) -> str:
        return f"StepRunner(rank={self.ctx.rank}, world_size={self.ctx.world_size})"


_CURRENT: list[DistContext] = [DistContext()]


def current() -> DistContext:
    """The context `setup` made (a single CPU process when nothing was set up)."""
    return _CURRENT[0]


def setup(device: torch.device, *, timeout_minutes: float = 30.0) -> DistContext:
    """Join torchrun's process group when launched by it; otherwise a single process on `device`.

    On CUDA each process takes `cuda:LOCAL_RANK` and NCCL; on CPU gloo. Ranks other than 0
    stop showing progress bars and info logs.
    """
    world = launched_world_size()
    if world <= 1:
        ctx = DistContext(device=device)
    else:
        import torch.distributed as dist

        if ENV_RANK not in os.environ:
            raise InputError(f"{ENV_WORLD}={world} but {ENV_RANK} is not set: launch with torchrun")
        rank, local_rank = int(os.environ[ENV_RANK]), int(os.environ.get(ENV_LOCAL_RANK, "0"))
        if device.type == "cuda":
            if local_rank >= torch.cuda.device_count():
                raise InputError(f"{ENV_LOCAL_RANK}={local_rank} but this machine has {torch.cuda.device_count()} "
                                 "GPU(s): use --nproc-per-node up to that, or --device cpu")
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                    timeout=datetime.timedelta(minutes=timeout_minutes))
        ctx = DistContext(rank=rank, world_size=world, local_rank=local_rank, device=device)
        if not ctx.is_main:
            from mmgraph.utils import set_progress

            set_progress(False)
            logging.getLogger("mmgraph").setLevel(logging.WARNING)
        log.info("rank %d of %d on %s (%s)", rank, world, device, dist.get_backend())
    _CURRENT[0] = ctx
    return ctx


def cleanup() -> None:
    """Leave the process group (if joined) and go back to a single process."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    _CURRENT[0] = DistContext()


@contextlib.contextmanager
def session(device: torch.device) -> Iterator[DistContext]:
    """`setup(device)` for the block, `cleanup()` after it (also when it fails)."""
    ctx = setup(device)
    try:
        yield ctx
    finally:
        cleanup()
