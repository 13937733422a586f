"""The process settings of mmgraph/runtime.py: applied once, optional, and harmless to results."""
from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from mmgraph import runtime


def _child(code: str, **env) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, **env})
    return out.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_keep_freed_memory_applies_once_and_the_opt_out_is_honoured():
    code = ("from mmgraph.runtime import keep_freed_memory as k; a = k(); b = k(); print(a, b)")
    first, again = _child(code, MMGRAPH_MALLOC="").split()
    assert first == again                   # idempotent: the second call reports the first's result
    assert first == str(platform.libc_ver()[0] == "glibc")
    assert _child(code, MMGRAPH_MALLOC="system") == "False False"


def test_quiet_openmp_keeps_a_users_setting(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    runtime.quiet_openmp()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
    monkeypatch.delenv("OMP_WAIT_POLICY")
    runtime.quiet_openmp()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"


def test_huge_pages_are_asked_for_unless_the_user_said_otherwise(monkeypatch):
    monkeypatch.setenv("THP_MEM_ALLOC_ENABLE", "0")
    runtime.huge_pages()
    assert os.environ["THP_MEM_ALLOC_ENABLE"] == "0"
    monkeypatch.delenv("THP_MEM_ALLOC_ENABLE")
    runtime.huge_pages()
    assert os.environ["THP_MEM_ALLOC_ENABLE"] == "1"


def test_large_tensors_compute_the_same_on_huge_pages():
    code = ("import torch; torch.manual_seed(0); a = torch.randn(300, 40000); b = torch.randn(40000, 64)\n"
            "print(repr(float((a @ b).log_softmax(-1).sum())), repr(float(a.sum())))")
    assert _child(code, THP_MEM_ALLOC_ENABLE="1") == _child(code, THP_MEM_ALLOC_ENABLE="0")


def test_large_tensors_compute_the_same_with_the_heap_kept():
    code = ("import torch; from mmgraph.runtime import keep_freed_memory; {}"
            "torch.manual_seed(0); a = torch.randn(300, 40000); s = 0.0\n"
            "for _ in range(3): b = a.clone().log_softmax(-1); s += float(b.sum()); del b\n"
            "print(repr(s))")
    assert _child(code.format("keep_freed_memory(); ")) == _child(code.format(""))


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_heap_limit_gives_back_what_the_kept_heap_grew_by():
    # After the first step the heap holds 400 MB that were freed; past the slack of 100 MB the
    # check trims, and the process shrinks by most of them. Steps that do not grow never trim.
    code = ("import torch; from mmgraph.runtime import HeapLimit, _resident_bytes\n"
            "limit = HeapLimit(slack=100 * 2**20); limit.check()\n"
            "held = [torch.ones(25 * 2**20) for _ in range(4)]; del held\n"
            "grown = _resident_bytes(); trimmed = limit.check(); after = _resident_bytes()\n"
            "print(trimmed, (grown - after) // 2**20, limit.check(), limit.trims)")
    trimmed, freed_mb, again, trims = _child(code, MMGRAPH_MALLOC="").split()
    assert (trimmed, again, trims) == ("True", "False", "1") and int(freed_mb) > 300
    assert _child(code, MMGRAPH_MALLOC="system").split()[0] == "False"   # the heap is not kept: nothing to do
