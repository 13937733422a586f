"""No import goes up the pipeline: every `mmgraph` import of every module, function-level included.

The packages form a pipeline and a module may import only its own package or lower ones:

    base (errors, utils, _lazy, distributed, runtime) < encoders < data < nn < models < train < eval < cli, api

`distributed.py` imports only `errors`, so it is base, usable by all. `encoders` sits *below*
`data`, not above as issue #14's "data -> encoders -> nn" reads: building a graph encodes its
raw media (`data/builder.py`, `data/features.py`, `data/ogb_format.py` import `mmgraph.encoders`
inside functions), while no encoder imports `mmgraph.data`. Swapping the two in `LEVELS` turns
those imports into violations. The package itself (`mmgraph/__init__.py`, `__main__.py`) is the
top: `from mmgraph import X` where X is not a module (nor a dunder such as __version__) counts
as importing the top.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mmgraph"

BASE = 0
LEVELS = {
    "errors": BASE, "utils": BASE, "_lazy": BASE, "distributed": BASE, "runtime": BASE,
    "encoders": 1, "data": 2, "nn": 3, "models": 4, "train": 5, "eval": 6,
    "cli": 7, "api": 7,
    "__init__": 8, "__main__": 8,
}

# Known violations, in files being rewritten elsewhere; delete an entry once its import is gone
# (the test fails on an entry that no longer matches, as a reminder).
ALLOWED: set[tuple[str, str]] = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _level(module: str) -> int:
    """The level of a dotted `mmgraph...` module name."""
    parts = module.split(".")
    if len(parts) == 1:
        return LEVELS["__init__"]
    if parts[1] not in LEVELS:
        raise AssertionError(f"mmgraph.{parts[1]} has no level in tests/test_layering.py LEVELS: add it")
    return LEVELS[parts[1]]


def _is_module(dotted: str) -> bool:
    path = PACKAGE.parent.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports_of(path: Path) -> list[tuple[str, int]]:
    """Every mmgraph module `path` imports, with its line, resolving relative imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found = []
    for node in ast.walk(tree):  # walk: imports inside functions count too
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:  # `from mmgraph import distributed` imports a module
                sub = f"{module}.{alias.name}"
                if module == "mmgraph" and alias.name.startswith("__"):
                    continue  # __version__ and the like: metadata, not the package's API
                found.append((sub if _is_module(sub) else module, node.lineno))
    return sorted((m, line) for m, line in found if m == "mmgraph" or m.startswith("mmgraph."))


def violations() -> list[tuple[str, str, int, str]]:
    """(file, imported module, line, why) for every import of a higher level."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        own = _module_name(path)
        own_level = LEVELS["__init__"] if own == "mmgraph" else _level(own)
        for module, line in imports_of(path):
            if _level(module) > own_level:
                out.append((rel, module, line, f"level {own_level} imports level {_level(module)}"))
    return out


def test_imports_never_go_up_the_pipeline():
    found = violations()
    new = [v for v in found if (v[0], v[1]) not in ALLOWED]
    assert not new, "imports that go up the pipeline (data < nn < models < train < eval < cli):\n" + "\n".join(
        f"  mmgraph/{f}:{line} imports {m} ({why})" for f, m, line, why in new)
    stale = ALLOWED - {(f, m) for f, m, _, _ in found}
    assert not stale, f"allow-list entries that no longer happen, delete them from ALLOWED: {sorted(stale)}"


def test_the_checker_sees_function_level_and_relative_imports(tmp_path, monkeypatch):
    root = tmp_path / "mmgraph"
    (root / "data").mkdir(parents=True)
    (root / "eval").mkdir()
    for p in (root / "__init__.py", root / "data" / "__init__.py", root / "eval" / "__init__.py",
              root / "eval" / "ranking.py", root / "errors.py"):
        p.write_text("")
    (root / "data" / "bad.py").write_text(
        "from mmgraph.errors import InputError\n"
        "def f():\n    from mmgraph.eval import ranking\n"
        "def g():\n    from ..eval.ranking import x\n"
        "import mmgraph.eval.ranking\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", root)
    found = [(f, m, line) for f, m, line, _ in violations()]
    assert found == [("data/bad.py", "mmgraph.eval.ranking", 3), ("data/bad.py", "mmgraph.eval.ranking", 5),
                     ("data/bad.py", "mmgraph.eval.ranking", 6)]
