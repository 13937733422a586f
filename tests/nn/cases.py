"""Contract tests shared by every module in `mmgraph.nn` (in the spirit of PyKEEN's tests/cases.py).

A contract test is a class that subclasses `ModuleContract`, names the class under test in
`module_class`, and says how to build one module and one set of example inputs:

    from cases import ModuleContract

    class TestMeanFusion(ModuleContract):
        module_class = MeanFusion

        def make_module(self):
            return MeanFusion(8, {"a": 2})

        def make_inputs(self):
            return ({"a": torch.randn(4, 2, 8)}, {"a": torch.rand(4, 2) > 0.5})

        def expected_shapes(self, inputs):
            return {"a": (4, 8)}

pytest then runs every `test_*` method below for it: output shapes, gradients reaching every
parameter (and the inputs), eval-mode determinism, float32 and bfloat16, CUDA (skipped without a GPU),
`reset_parameters()` existing, being called from `__init__` and re-initialising every parameter,
a state_dict round trip, and `repr`. `tests/nn/test_meta.py` fails when an exported module has no
such class. Helpers (`to`, `assert_shapes`, `floating_tensors`) are plain functions for reuse.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import pytest
import torch
from torch import Tensor, nn

__all__ = ["ModuleContract", "one_thread", "to", "assert_shapes", "floating_tensors",
           "random_projection_loss"]


# ---------------------------------------------------------------------------------------------
# Helpers over nested structures (tensors inside dicts, tuples, lists and dataclasses).
# ---------------------------------------------------------------------------------------------
def to(obj: Any, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Any:
    """Move every tensor in `obj` to `device`; cast floating tensors (only) to `dtype`."""
    if isinstance(obj, Tensor):
        if dtype is not None and obj.is_floating_point():
            obj = obj.to(dtype)
        return obj.to(device) if device is not None else obj
    if isinstance(obj, dict):
        return {k: to(v, device, dtype) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to(v, device, dtype) for v in obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {f.name: to(getattr(obj, f.name), device, dtype) for f in dataclasses.fields(obj) if f.init}
        return dataclasses.replace(obj, **changes)
    return obj


def floating_tensors(obj: Any) -> list[Tensor]:
    """Every floating-point tensor in a nested output, in a fixed order."""
    if isinstance(obj, Tensor):
        return [obj] if obj.is_floating_point() else []
    if isinstance(obj, dict):
        return [t for k in obj for t in floating_tensors(obj[k])]
    if isinstance(obj, (list, tuple)):
        return [t for v in obj for t in floating_tensors(v)]
    return []


def assert_shapes(output: Any, expected: Any, where: str = "output") -> None:
    """`expected` mirrors `output`: a tuple of ints per tensor, dicts/lists/tuples of those."""
    if isinstance(output, Tensor):
        got = tuple(output.shape)
        assert got == tuple(expected), f"{where}: shape {got} != {tuple(expected)}"
    elif isinstance(output, dict):
        assert isinstance(expected, dict), f"{where}: got a dict, expected {type(expected).__name__}"
        assert set(output) == set(expected), (
            f"{where}: keys {sorted(map(str, output))} != {sorted(map(str, expected))}")
        for k in expected:
            assert_shapes(output[k], expected[k], f"{where}[{k!r}]")
    elif isinstance(output, (list, tuple)):
        assert isinstance(expected, (list, tuple)), f"{where}: got a sequence, expected {expected!r}"
        assert len(output) == len(expected), f"{where}: length {len(output)} != {len(expected)}"
        for i, (o, e) in enumerate(zip(output, expected)):
            assert_shapes(o, e, f"{where}[{i}]")
    else:
        assert output == expected, f"{where}: {output!r} != {expected!r}"


def random_projection_loss(output: Any, seed: int = 1234) -> Tensor:
    """A scalar that depends on every output element with a random sign and weight.

    A plain `sum()` hides missing gradients: LayerNorm or softmax outputs sum to a constant.
    """
    gen = torch.Generator().manual_seed(seed)
    tensors = floating_tensors(output)
    assert tensors, "the module returned no floating-point tensor"
    loss = tensors[0].new_zeros(())
    for t in tensors:
        w = torch.randn(t.shape, generator=gen).to(device=t.device, dtype=t.dtype)
        loss = loss + (t * w).sum()
    return loss


def _with_input_grads(obj: Any) -> Any:
    """Copies of the floating tensors in `obj` that are leaves requiring grad."""
    if isinstance(obj, Tensor):
        return obj.detach().clone().requires_grad_() if obj.is_floating_point() else obj
    if isinstance(obj, dict):
        return {k: _with_input_grads(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_with_input_grads(v) for v in obj)
    return obj


def _assert_all_close(a: Any, b: Any, *, atol: float, rtol: float, where: str = "output") -> None:
    ta, tb = floating_tensors(a), floating_tensors(b)
    assert len(ta) == len(tb), f"{where}: {len(ta)} vs {len(tb)} tensors"
    for i, (x, y) in enumerate(zip(ta, tb)):
        torch.testing.assert_close(x.float().cpu(), y.float().cpu(), atol=atol, rtol=rtol,
                                   msg=f"{where}: tensor {i}")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: on a busy machine intra-op threads only wait on each other (20x slower).

    A test module that imports this fixture runs single-threaded; contract classes always do."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------------------
# The contract.
# ---------------------------------------------------------------------------------------------
class ModuleContract:
    """Base class of a contract test. Subclasses set `module_class` and the three hooks."""

    module_class: type[nn.Module]
    #: dtypes that must run (float outputs are checked finite and of that dtype).
    dtypes: tuple[torch.dtype, ...] = (torch.float32, torch.bfloat16)
    #: tolerance for CPU-vs-CUDA comparisons (float32).
    atol: float = 1e-4
    rtol: float = 1e-4
    #: parameter names that may legitimately get no gradient from `make_inputs()`; say why.
    params_without_grad: frozenset[str] = frozenset()

    # --- hooks ---------------------------------------------------------------------------------
    def make_module(self) -> nn.Module:
        raise NotImplementedError

    def make_inputs(self) -> tuple:
        """Positional arguments of one forward call (fresh tensors, CPU, float32)."""
        raise NotImplementedError

    def expected_shapes(self, inputs: tuple) -> Any:
        """The output's structure with a shape tuple in place of each tensor."""
        raise NotImplementedError

    def call(self, module: nn.Module, inputs: tuple) -> Any:
        """How to run the module; override to test a method other than forward."""
        return module(*inputs)

    # --- fixtures ------------------------------------------------------------------------------
    @pytest.fixture(autouse=True)
    def _seed(self):
        torch.manual_seed(0)
        yield

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _one_thread(cls):
        """Tiny tensors: on a busy machine intra-op threads only wait on each other (20x slower)."""
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        yield
        torch.set_num_threads(threads)

    def _build(self) -> tuple[nn.Module, tuple]:
        torch.manual_seed(0)
        module = self.make_module()
        assert isinstance(module, self.module_class), f"make_module() built {type(module).__name__}"
        return module, self.make_inputs()

    # --- the checks ----------------------------------------------------------------------------
    def test_output_shapes(self):
        module, inputs = self._build()
        module.eval()
        with torch.no_grad():
            out = self.call(module, inputs)
        assert_shapes(out, self.expected_shapes(inputs))
        for t in floating_tensors(out):
            assert torch.isfinite(t).all(), "non-finite output"

    def test_gradients_reach_every_parameter(self):
        module, inputs = self._build()
        module.train()
        inputs = _with_input_grads(inputs)
        random_projection_loss(self.call(module, inputs)).backward()
        leaves = floating_tensors(inputs)
        if leaves:
            reached = any(x.grad is not None and x.grad.abs().sum() > 0 for x in leaves)
            assert reached, "no gradient reaches the inputs"
        missing, zero = [], []
        for name, p in module.named_parameters():
            if not p.requires_grad or name in self.params_without_grad:
                continue
            if p.grad is None:
                missing.append(name)
            elif not torch.isfinite(p.grad).all():
                raise AssertionError(f"non-finite gradient for {name}")
            elif p.grad.abs().sum() == 0:
                zero.append(name)
        assert not missing, f"no gradient reaches {missing}"
        assert not zero, f"gradient is exactly zero for {zero}"

    def test_eval_is_deterministic(self):
        module, inputs = self._build()
        module.eval()
        with torch.no_grad():
            a = self.call(module, inputs)
            b = self.call(module, inputs)
        ta, tb = floating_tensors(a), floating_tensors(b)
        assert all(torch.equal(x, y) for x, y in zip(ta, tb)), "two eval-mode calls differ"

    def test_dtypes(self):
        for dtype in self.dtypes:
            module, inputs = self._build()
            module = module.to(dtype).eval()
            with torch.no_grad():
                out = self.call(module, to(inputs, dtype=dtype))
            assert_shapes(out, self.expected_shapes(inputs), where=f"output ({dtype})")
            for t in floating_tensors(out):
                assert t.dtype == dtype, f"{dtype} in, {t.dtype} out"
                assert torch.isfinite(t.float()).all(), f"non-finite output in {dtype}"

    @pytest.mark.cuda
    def test_cuda_matches_cpu(self):
        if not torch.cuda.is_available():
            pytest.skip("no CUDA device")
        module, inputs = self._build()
        module.eval()
        with torch.no_grad():
            cpu_out = self.call(module, inputs)
            gpu_out = self.call(module.to("cuda"), to(inputs, device="cuda"))
        for t in floating_tensors(gpu_out):
            assert t.device.type == "cuda", "output left the GPU"
        _assert_all_close(cpu_out, gpu_out, atol=self.atol, rtol=self.rtol, where="cuda vs cpu")

    def test_reset_parameters_is_called_from_init(self, monkeypatch):
        calls: list[type] = []
        original: Callable = self.module_class.reset_parameters

        def spy(module_self, *args, **kwargs):
            calls.append(type(module_self))
            return original(module_self, *args, **kwargs)

        monkeypatch.setattr(self.module_class, "reset_parameters", spy)
        self._build()
        assert calls, f"{self.module_class.__name__}.__init__ does not call reset_parameters()"

    def test_reset_parameters_reinitialises_every_parameter(self):
        module, _ = self._build()
        with torch.no_grad():
            for p in module.parameters():
                p.fill_(0.123)
        module.reset_parameters()
        stale = [n for n, p in module.named_parameters() if torch.all(p == 0.123)]
        assert not stale, f"reset_parameters() leaves {stale} untouched"

    def test_state_dict_round_trip(self):
        module, inputs = self._build()
        module.eval()
        torch.manual_seed(1)  # a differently initialised twin
        twin = self.make_module().eval()
        twin.load_state_dict(module.state_dict())
        with torch.no_grad():
            _assert_all_close(self.call(module, inputs), self.call(twin, inputs), atol=0, rtol=0,
                              where="after load_state_dict")

    def test_repr(self):
        module, _ = self._build()
        text = repr(module)
        assert text.startswith(self.module_class.__name__), text
