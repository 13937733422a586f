"""Scripts of benchmarks/ (not a package) loaded by path for the tests, each once per session."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def load_bench_module(stem: str) -> ModuleType:
    """benchmarks/STEM.py as module `mmgraph_bench_STEM` (never shadowing e.g. Hugging Face `datasets`)."""
    name = f"mmgraph_bench_{stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{stem}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]
