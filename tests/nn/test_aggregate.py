"""The CSR kernels: structure, agreement with a dense reference, gradients, errors."""
from __future__ import annotations

import pytest
import torch

from mmgraph.errors import InputError
from mmgraph.nn.aggregate import CSR, aggregate, to_csr
from mmgraph.nn.aggregate import sddmm, segment_max, segment_sum, spmm

# 4 sources, 5 destinations; destinations 1 and 3 have no edges, source 0 appears twice.
EDGES = torch.tensor([[0, 1, 1, 3, 2, 0, 0], [0, 0, 2, 2, 2, 4, 0]])
NUM_SRC, NUM_DST = 4, 5


def reference(x: torch.Tensor, reduce: str) -> torch.Tensor:
    """Gather-and-scatter over the edge list; destinations without edges stay 0."""
    src, dst = EDGES
    out = x.new_zeros((NUM_DST,) + x.shape[1:])
    if reduce == "sum":
        return out.index_add(0, dst, x[src])
    return out.index_reduce(0, dst, x[src], "mean" if reduce == "mean" else "amax", include_self=False)


def test_to_csr_groups_edges_by_destination():
    csr = to_csr(EDGES, NUM_SRC, NUM_DST)
    assert csr.num_src == NUM_SRC and csr.num_dst == NUM_DST and csr.num_edges == EDGES.size(1)
    assert csr.col.dtype == torch.int32 and csr.ptr.dtype == torch.int32
    assert csr.ptr.tolist() == [0, 3, 3, 6, 6, 7]
    assert csr.deg.tolist() == [3, 0, 3, 0, 1]
    # perm maps CSR positions back to the original edges
    assert torch.equal(csr.col.long(), EDGES[0, csr.perm])
    assert torch.equal(csr.row(), EDGES[1, csr.perm])
    # the transpose lists the same edges grouped by source; its perm indexes CSR positions
    t = csr.transpose
    assert t.num_src == NUM_DST and t.num_dst == NUM_SRC and t.transpose is None
    assert torch.equal(t.col.long(), csr.row()[t.perm])
    assert torch.equal(t.row(), csr.col.long()[t.perm])
    assert "num_edges=7" in repr(csr)


def test_with_transpose_matches_to_csr_transpose():
    lazy = to_csr(EDGES, NUM_SRC, NUM_DST, transpose=False)
    assert lazy.transpose is None
    full = lazy.with_transpose()
    eager = to_csr(EDGES, NUM_SRC, NUM_DST)
    for a, b in ((full.transpose.ptr, eager.transpose.ptr), (full.transpose.col, eager.transpose.col),
                 (full.transpose.perm, eager.transpose.perm)):
        assert torch.equal(a, b)


@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
@pytest.mark.parametrize("shape", [(6,), (2, 3)])
def test_aggregate_matches_dense_reference(reduce, shape):
    x = torch.randn((NUM_SRC,) + shape)
    out = aggregate(x, to_csr(EDGES, NUM_SRC, NUM_DST), reduce)
    torch.testing.assert_close(out, reference(x, reduce))
    assert out[1].abs().sum() == 0 and out[3].abs().sum() == 0  # no edges: zeros


@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
@pytest.mark.parametrize("transpose", [True, False])
def test_aggregate_gradcheck(reduce, transpose):
    x = torch.randn(NUM_SRC, 3, dtype=torch.float64, requires_grad=True)
    csr = to_csr(EDGES, NUM_SRC, NUM_DST, transpose=transpose)
    assert torch.autograd.gradcheck(lambda x: aggregate(x, csr, reduce), (x,))


@pytest.mark.parametrize("values_shape", [(7,), (7, 2)])
def test_spmm_and_sddmm_gradcheck_with_heads(values_shape):
    csr = to_csr(EDGES, NUM_SRC, NUM_DST)
    values = torch.randn(values_shape, dtype=torch.float64, requires_grad=True)
    x = torch.randn(NUM_SRC, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v, x: spmm(csr, x, v), (values, x))
    a = torch.randn(NUM_DST, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: sddmm(csr, a, b), (a, x))


def test_spmm_and_sddmm_match_edge_formulas():
    csr = to_csr(EDGES, NUM_SRC, NUM_DST)
    row, col = csr.row(), csr.col.long()
    x, a, w = torch.randn(NUM_SRC, 2, 3), torch.randn(NUM_DST, 2, 3), torch.randn(7, 2)
    expected = torch.zeros(NUM_DST, 2, 3).index_add(0, row, w.unsqueeze(-1) * x[col])
    torch.testing.assert_close(spmm(csr, x, w), expected)
    torch.testing.assert_close(sddmm(csr, a, x), (a[row] * x[col]).sum(-1))
    s = torch.randn(7, 2)
    torch.testing.assert_close(segment_sum(s, csr), torch.zeros(NUM_DST, 2).index_add(0, row, s))
    seg_max = segment_max(s, csr)
    assert torch.isinf(seg_max[1]).all() and torch.equal(seg_max[4], s[6])


@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_sum_and_mean_save_no_per_edge_feature_tensor(reduce):
    """Autograd keeps node-sized tensors only: nothing of E x d elements."""
    num_edges, d = EDGES.size(1), 16
    saved: list[torch.Size] = []

    def pack(t):
        saved.append(t.shape)
        return t

    x = torch.randn(NUM_SRC, d, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = aggregate(x, to_csr(EDGES, NUM_SRC, NUM_DST), reduce)
    out.sum().backward()
    assert saved, "no tensor was saved for backward"
    assert all(s.numel() < num_edges * d for s in saved), saved


@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
def test_bfloat16_in_bfloat16_out(reduce):
    x = torch.randn(NUM_SRC, 4)
    out = aggregate(x.bfloat16(), to_csr(EDGES, NUM_SRC, NUM_DST), reduce)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), reference(x, reduce), atol=0.05, rtol=0.02)


def test_graph_without_edges_gives_zeros_and_zero_gradients():
    csr = to_csr(torch.empty(2, 0, dtype=torch.long), 3, 2)
    x = torch.randn(3, 4, requires_grad=True)
    for reduce in ("sum", "mean", "max"):
        out = aggregate(x, csr, reduce)
        assert out.shape == (2, 4) and out.abs().sum() == 0
        out.sum().backward()
        assert x.grad.abs().sum() == 0


@pytest.mark.parametrize("edge_index, message", [
    (torch.tensor([0, 1, 2]), "shape \\[2, E\\]"),
    (torch.tensor([[0.0, 1.0], [1.0, 0.0]]), "integer node ids"),
    (torch.tensor([[0, 4], [1, 0]]), "source node id 4 is out of range"),
    (torch.tensor([[0, 1], [-1, 0]]), "destination node id -1"),
])
def test_bad_edge_index_is_an_input_error(edge_index, message):
    with pytest.raises(InputError, match=message):
        to_csr(edge_index, NUM_SRC, NUM_DST, name="cites")


def test_feature_rows_must_match_the_adjacency():
    csr = to_csr(EDGES, NUM_SRC, NUM_DST)
    with pytest.raises(InputError, match="x_src has 3 rows but the adjacency expects 4"):
        aggregate(torch.randn(3, 2), csr)
    with pytest.raises(ValueError, match="reduce must be"):
        aggregate(torch.randn(4, 2), csr, "median")


@pytest.mark.cuda
def test_cuda_matches_cpu():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    csr = to_csr(EDGES, NUM_SRC, NUM_DST)
    gpu = csr.to("cuda")
    assert isinstance(gpu, CSR) and gpu.transpose.col.is_cuda
    x = torch.randn(NUM_SRC, 2, 3)
    a = torch.randn(NUM_DST, 2, 3)
    for reduce in ("sum", "mean", "max"):
        torch.testing.assert_close(aggregate(x.cuda(), gpu, reduce).cpu(), aggregate(x, csr, reduce))
    torch.testing.assert_close(sddmm(gpu, a.cuda(), x.cuda()).cpu(), sddmm(csr, a, x))
    xg = x.cuda().requires_grad_(True)
    aggregate(xg, gpu, "mean").sum().backward()
    xc = x.clone().requires_grad_(True)
    aggregate(xc, csr, "mean").sum().backward()
    torch.testing.assert_close(xg.grad.cpu(), xc.grad)
