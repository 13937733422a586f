"""Property checks for heterogeneous message-passing layers, written once and reused.

- `tiny_hetero_graph()`: 9 nodes of 3 types and 3 relations, with a node type that no relation
  ends at ("venue") and nodes without incoming edges of some relation.
- `assert_permutation_equivariant`: relabel the nodes of every type; outputs relabel alike.
- `assert_layout_invariant`: [2, E] tensors, shuffled edge order, and precomputed CSRs (with
  and without the stored transpose) give the same outputs and the same gradients.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from mmgraph.nn.aggregate import to_csr

NODE_TYPES = ["author", "paper", "venue"]
WRITES = ("author", "writes", "paper")
REV_WRITES = ("paper", "rev_writes", "author")
HOSTS = ("venue", "hosts", "paper")
METADATA = (NODE_TYPES, [WRITES, REV_WRITES, HOSTS])
NUM_NODES = {"author": 3, "paper": 4, "venue": 2}


def tiny_hetero_graph(channels: int = 8, seed: int = 0) -> tuple[dict[str, Tensor], dict]:
    """``(x_dict, edge_index_dict)``: author 2 writes nothing; paper 3 has only a venue edge."""
    gen = torch.Generator().manual_seed(seed)
    x_dict = {t: torch.randn(n, channels, generator=gen) for t, n in NUM_NODES.items()}
    writes = torch.tensor([[0, 0, 1, 1, 0], [0, 1, 1, 2, 2]])
    edge_index_dict = {
        WRITES: writes,
        REV_WRITES: writes.flip(0),
        HOSTS: torch.tensor([[0, 0, 1, 1], [0, 1, 2, 3]]),
    }
    return x_dict, edge_index_dict


def _run(module: nn.Module, x_dict: dict[str, Tensor], edge_index_dict: dict) -> dict[str, Tensor]:
    return module(x_dict, edge_index_dict)


def assert_permutation_equivariant(module: nn.Module, x_dict: dict[str, Tensor], edge_index_dict: dict,
                                   *, seed: int = 0, atol: float = 1e-5) -> None:
    """``f(P x, P A P^T) == P f(x, A)`` for a random permutation ``P`` of each node type."""
    gen = torch.Generator().manual_seed(seed)
    perm = {t: torch.randperm(x.size(0), generator=gen) for t, x in x_dict.items()}
    # new position of every old node id
    new_id = {t: torch.empty_like(p).scatter_(0, p, torch.arange(p.numel())) for t, p in perm.items()}
    x_perm = {t: x[perm[t]] for t, x in x_dict.items()}
    ei_perm = {et: torch.stack([new_id[et[0]][ei[0]], new_id[et[2]][ei[1]]])
               for et, ei in edge_index_dict.items()}
    module.eval()
    with torch.no_grad():
        out = _run(module, x_dict, edge_index_dict)
        out_perm = _run(module, x_perm, ei_perm)
    assert set(out) == set(out_perm) == set(x_dict), f"output types {sorted(out)} != {sorted(x_dict)}"
    for t in out:
        torch.testing.assert_close(out_perm[t], out[t][perm[t]], atol=atol, rtol=1e-5,
                                   msg=lambda m: f"node type {t!r} is not permutation equivariant: {m}")


def _outputs_and_grads(module: nn.Module, x_dict: dict[str, Tensor], adjacency: dict):
    xs = {t: x.detach().clone().requires_grad_(True) for t, x in x_dict.items()}
    module.zero_grad(set_to_none=True)
    out = _run(module, xs, adjacency)
    gen = torch.Generator().manual_seed(7)
    loss = sum((o * torch.randn(o.shape, generator=gen)).sum() for o in out.values())
    loss.backward()
    grads = {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}
    grads.update({f"x[{t}]": x.grad.clone() for t, x in xs.items() if x.grad is not None})
    return {t: o.detach() for t, o in out.items()}, grads


def assert_layout_invariant(module: nn.Module, x_dict: dict[str, Tensor], edge_index_dict: dict,
                            *, atol: float = 1e-5) -> None:
    """Tensor, shuffled-tensor and CSR adjacencies: same outputs, same gradients."""
    module.eval()
    num = {t: x.size(0) for t, x in x_dict.items()}
    gen = torch.Generator().manual_seed(3)
    layouts = {
        "tensor": edge_index_dict,
        "shuffled": {et: ei[:, torch.randperm(ei.size(1), generator=gen)]
                     for et, ei in edge_index_dict.items()},
        "csr": {et: to_csr(ei, num[et[0]], num[et[2]]) for et, ei in edge_index_dict.items()},
        "csr_no_transpose": {et: to_csr(ei, num[et[0]], num[et[2]], transpose=False)
                             for et, ei in edge_index_dict.items()},
    }
    ref_out, ref_grads = _outputs_and_grads(module, x_dict, layouts["tensor"])
    for name, adjacency in layouts.items():
        out, grads = _outputs_and_grads(module, x_dict, adjacency)
        for t in ref_out:
            torch.testing.assert_close(out[t], ref_out[t], atol=atol, rtol=1e-5,
                                       msg=lambda m: f"{name}: output of {t!r} differs: {m}")
        assert set(grads) == set(ref_grads), f"{name}: gradients reach {sorted(grads)} vs {sorted(ref_grads)}"
        for key in ref_grads:
            torch.testing.assert_close(grads[key], ref_grads[key], atol=atol, rtol=1e-5,
                                       msg=lambda m: f"{name}: gradient of {key} differs: {m}")


def assert_rejects_bad_inputs(module: nn.Module, x_dict: dict[str, Tensor], edge_index_dict: dict) -> None:
    """Unknown edge types, missing node types, wrong widths and mis-sized CSRs: InputError."""
    import pytest

    from mmgraph.errors import InputError

    first = next(iter(edge_index_dict))
    unknown = {**edge_index_dict, ("paper", "unknown", "paper"): torch.tensor([[0], [1]])}
    with pytest.raises(InputError, match="paper\\|unknown\\|paper.*not in the layer's metadata"):
        module(x_dict, unknown)
    without_src = {t: x for t, x in x_dict.items() if t != first[0]}
    with pytest.raises(InputError, match=f"no features for node type '{first[0]}'"):
        module(without_src, edge_index_dict)
    wide = {t: torch.cat([x, x], dim=1) for t, x in x_dict.items()}
    with pytest.raises(InputError, match="expected \\[num_nodes, "):
        module(wide, edge_index_dict)
    n_src, n_dst = x_dict[first[0]].size(0), x_dict[first[2]].size(0)
    small = {**edge_index_dict, first: to_csr(edge_index_dict[first], n_src + 1, n_dst)}
    with pytest.raises(InputError, match="CSR is"):
        module(x_dict, small)
    out_of_range = {**edge_index_dict, first: torch.tensor([[n_src], [0]])}
    with pytest.raises(InputError, match="out of range"):
        module(x_dict, out_of_range)


class HeteroLayerProperties:
    """Mix into a `cases.ModuleContract` subclass whose inputs are ``(x_dict, edge_index_dict)``."""

    def _module_and_graph(self):
        torch.manual_seed(0)
        return self.make_module(), self.make_inputs()

    def test_permutation_equivariant(self):
        module, (x_dict, edge_index_dict) = self._module_and_graph()
        assert_permutation_equivariant(module, x_dict, edge_index_dict)

    def test_tensor_and_csr_inputs_agree(self):
        module, (x_dict, edge_index_dict) = self._module_and_graph()
        assert_layout_invariant(module, x_dict, edge_index_dict)

    def test_gradcheck(self):
        """Analytic gradients (custom sparse kernels included) match finite differences."""
        module, (x_dict, edge_index_dict) = self._module_and_graph()
        module = module.double().eval()
        types = list(x_dict)
        inputs = tuple(x_dict[t].double().requires_grad_(True) for t in types)

        def run(*xs):
            out = module(dict(zip(types, xs)), edge_index_dict)
            return tuple(out[t] for t in types)

        assert torch.autograd.gradcheck(run, inputs, atol=1e-6)

    def test_rejects_bad_inputs(self):
        module, (x_dict, edge_index_dict) = self._module_and_graph()
        assert_rejects_bad_inputs(module, x_dict, edge_index_dict)

    def test_missing_relation_means_no_edges(self):
        """Leaving an edge type out equals passing it with zero edges."""
        module, (x_dict, edge_index_dict) = self._module_and_graph()
        module.eval()
        dropped = next(iter(edge_index_dict))
        rest = {et: ei for et, ei in edge_index_dict.items() if et != dropped}
        empty = {**rest, dropped: torch.empty(2, 0, dtype=torch.long)}
        with torch.no_grad():
            a, b = module(x_dict, rest), module(x_dict, empty)
        for t in a:
            torch.testing.assert_close(a[t], b[t])
