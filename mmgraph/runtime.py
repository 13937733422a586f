"""Process settings that make torch on a small CPU machine run at the speed of its arithmetic.

Costs that no profile of mmgraph's own code shows, measured on the 2-core machine this project
is built on (a virtual machine, where a page fault is expensive):

- **Idle OpenMP threads that spin-wait** starve the other core (10-30x slowdowns of small ops
  under load). `OMP_WAIT_POLICY=PASSIVE` makes them sleep; it must be set before torch loads.
- **Fresh pages for every large tensor.** glibc serves each allocation above its mmap threshold
  (at most 32 MB) with a new mapping and unmaps it on free, so every step of a 1-N loss over
  40,943 entities (logits of 256 x 40,943 floats, 42 MB) faults its pages in again: a copy of
  such a tensor took 45 ms against 1.5 ms into memory already mapped, and a WN18RR training step
  (reciprocal ComplEx, rank 100, 256 edges) took 440-520 ms against 270-280 ms with the setting
  below (2026-12-03, two runs of 30 steps each). `keep_freed_memory` asks glibc to serve large blocks from
  its heap and keep freed memory for the next step (`mallopt(M_MMAP_MAX, 0)` and no trimming);
  the process's resident size then stays at its peak instead of shrinking between steps, and
  can grow past it through fragmentation: the mini-batch benchmark `benchmarks/trim_step.py`
  (trimmed and untrimmed steps alternating in one process) ran 1.5x faster at a 9.7 GB peak
  against 7.2 GB with glibc's default.
- **4 KB pages.** torch can put its large blocks on 2 MB transparent huge pages
  (`huge_pages`): fewer faults for fresh memory, and blocks in 2 MB units that a kept heap reuses.

Steps of varying sizes (mini-batches) fragment a kept heap, so `fit` bounds it with `HeapLimit`:
when the process has grown by a third past its size after an epoch's first step, the free pages
go back to the system (`malloc_trim`). `MMGRAPH_MALLOC=system` leaves glibc as it is (for runs tight on RAM). Every call is idempotent;
`keep_freed_memory` does nothing outside Linux with glibc. Entry points (the CLI, the tests, the
benchmarks) call `setup_process` before torch loads; `fit` calls `keep_freed_memory` for library
users.

    from mmgraph.runtime import setup_process
    setup_process()   # first thing in a script, before `import torch`
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

__all__ = ["setup_process", "quiet_openmp", "huge_pages", "keep_freed_memory", "HeapLimit"]

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4   # glibc's mallopt parameters (malloc.h)
_applied: bool | None = None


def quiet_openmp() -> None:
    """Sleeping OpenMP workers (set before torch loads; a user's own setting wins)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def keep_freed_memory() -> bool:
    """Serve large allocations from the reused heap (glibc); True when the setting is in force."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get("MMGRAPH_MALLOC", "").lower() == "system" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):   # musl and others have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _applied = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    log.debug("glibc keeps freed memory for reuse: %s", _applied)
    return _applied


def _libc():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def _resident_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class HeapLimit:
    """Bounds what the kept heap may hold beyond the working set, for steps of varying sizes.

    With freed memory kept, steps whose tensors change size (mini-batches: every sample has
    another size) fragment the heap, and the resident size grows with every step: a two-layer
    epoch on a 1M-node graph went from 4.6 GB after its first step to 18 GB after 293. After a
    step, ``check`` hands the free pages back (glibc ``malloc_trim``) when the process holds more
    than ``slack`` bytes (default: a third of its size after the first step, at least 512 MB)
    beyond its size after the first step, which is the working set of a step; steps of one size
    (full-batch, 1-N) do not grow and never trim.
    Does nothing where the heap is not kept.

        limit = HeapLimit()
        for batch in batches:
            step(batch); limit.check()
    """

    def __init__(self, slack: int | None = None):
        self.slack = slack
        self.base: int | None = None
        self.trims = 0
        self._trim = None
        if keep_freed_memory():
            libc = _libc()
            self._trim = getattr(libc, "malloc_trim", None) if libc is not None else None

    def check(self) -> bool:
        """Trim the heap if it grew past the slack; True when it did."""
        if self._trim is None:
            return False
        now = _resident_bytes()
        if now is None:
            return False
        if self.base is None:
            self.base = now
            self.slack = self.slack if self.slack is not None else max(now // 3, 512 * 2**20)
            return False
        if now - self.base <= self.slack:
            return False
        self._trim(0)
        self.trims += 1
        log.debug("heap trimmed (%d so far) at %.2f GB resident", self.trims, now / 2**30)
        return True


def huge_pages() -> None:
    """Large torch tensors on 2 MB pages (set before torch allocates; a user's own setting wins).

    torch's CPU allocator aligns blocks of 2 MB and more to 2 MB and asks the kernel for
    transparent huge pages (``THP_MEM_ALLOC_ENABLE``, read once, at the first allocation) where
    Linux offers them (``madvise`` or ``always`` in /sys/kernel/mm/transparent_hugepage/enabled).
    A fresh 100 MB copy took 19 ms against 45 ms (a 512th of the page faults), and the 2 MB
    granularity lets a kept heap reuse freed blocks: 20 two-layer mini-batch steps on the 1M-node
    graph took 4.9 s a step and trimmed twice (6.5 GB peak) against 5.1 s, 6 trims, 7.0 GB.
    """
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")


def setup_process() -> None:
    """The three settings, for a process's entry point (before torch loads)."""
    quiet_openmp()
    huge_pages()
    keep_freed_memory()
