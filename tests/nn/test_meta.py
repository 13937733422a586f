"""Meta-test: every module `mmgraph.nn` exports has a contract test (PyKEEN's tests/test_meta.py).

A contract test is any class in tests/nn/test_*.py with a `module_class` attribute, normally a
subclass of `cases.ModuleContract`. The check is by attribute, not by base class identity, so it
does not depend on how pytest happened to import `cases`.
"""
from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path

import pytest
from torch import nn

import mmgraph.nn

HERE = Path(__file__).resolve().parent


def _contract_classes() -> dict[type, list[str]]:
    """module class -> names of the test classes that declare it."""
    if str(HERE) not in sys.path:  # pytest's default (prepend) import mode puts it there already
        sys.path.insert(0, str(HERE))
    covered: dict[type, list[str]] = {}
    for path in sorted(HERE.glob("test_*.py")):
        if path.stem == "test_meta":
            continue
        module = importlib.import_module(path.stem)
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and name.startswith("Test") and obj.__module__ == module.__name__:
                target = getattr(obj, "module_class", None)
                if target is not None:
                    covered.setdefault(target, []).append(f"{path.name}::{name}")
    return covered


@pytest.fixture(scope="module")
def covered() -> dict[type, list[str]]:
    return _contract_classes()


@pytest.mark.parametrize("name", mmgraph.nn.__all__)
def test_every_exported_module_has_a_contract_test(name, covered):
    obj = getattr(mmgraph.nn, name)  # an export that cannot be imported fails here, by name
    if not (inspect.isclass(obj) and issubclass(obj, nn.Module)):
        pytest.skip(f"{name} is not an nn.Module (kernels, dataclasses and schedules have unit tests)")
    assert obj in covered, (
        f"mmgraph.nn.{name} has no contract test: add a class with `module_class = {name}` "
        f"subclassing cases.ModuleContract to a tests/nn/test_*.py file"
    )


def test_contract_classes_use_the_shared_cases(covered):
    """Every declared contract runs the shared checks (it is a ModuleContract by its methods)."""
    for target, names in covered.items():
        for qualified in names:
            file, cls_name = qualified.split("::")
            cls = getattr(importlib.import_module(file[:-3]), cls_name)
            assert hasattr(cls, "test_gradients_reach_every_parameter"), (
                f"{qualified} declares module_class = {target.__name__} but does not subclass ModuleContract"
            )
