"""Neighbourhood aggregation over a CSR adjacency, without per-edge message tensors.

A relation's edges are stored once, grouped by destination (`CSR`). Sum and mean are a sparse
matrix product `A @ x_src` (`torch.sparse.mm` on a CSR tensor: MKL on CPU, cuSPARSE on CUDA), so
no `[E, d]` message tensor is built. Attention layers use the same two kernels with per-edge
weights: `spmm` (weighted sum of source rows) and `sddmm` (one dot product per edge); each is
the other's backward, and backward passes use the stored transpose instead of a CSC product.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from mmgraph.errors import InputError

# PyTorch warns on first use of CSR tensors; the operations used here are the stable subset.
warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support is in beta state.*")

Reduce = Literal["sum", "mean", "max"]
_INT32_LIMIT = 2**31 - 1
# The CPU sparse backend has no bf16/fp16 kernels; low precision is aggregated in float32,
# which also keeps sums over high-degree nodes accurate.
_NATIVE_DTYPES = (torch.float32, torch.float64)


@dataclass(frozen=True, eq=False)
class CSR:
    """The edges of one relation, grouped by destination.

    Args:
        ptr: ``[num_dst + 1]`` offsets; the sources of destination ``i`` are
            ``col[ptr[i]:ptr[i+1]]``.
        col: ``[E]`` source ids in destination order (int32 when the sizes allow, else int64).
        num_src: number of source nodes (columns).
        deg: ``[num_dst]`` int64 in-degree of each destination.
        perm: ``[E]`` int64, the original edge id of each CSR position (``None`` if unknown).
        transpose: the reversed edges as a CSR over sources, whose ``perm`` indexes the
            positions of this CSR; used by backward passes (built on demand when ``None``).
    """

    ptr: Tensor
    col: Tensor
    num_src: int
    deg: Tensor
    perm: Tensor | None = None
    transpose: "CSR | None" = None

    @property
    def num_dst(self) -> int:
        return self.ptr.numel() - 1

    @property
    def num_edges(self) -> int:
        return self.col.numel()

    @property
    def device(self) -> torch.device:
        return self.col.device

    def row(self) -> Tensor:
        """``[E]`` int64 destination id of every CSR position."""
        ids = torch.arange(self.num_dst, device=self.device)
        return ids.repeat_interleave(self.deg, output_size=self.num_edges)

    def with_transpose(self) -> "CSR":
        """This CSR with `transpose` filled in (itself when it already is)."""
        if self.transpose is not None:
            return self
        order = torch.sort(self.col, stable=True).indices  # int32 keys sort about twice as fast
        deg_t = torch.bincount(self.col, minlength=self.num_src)
        t = CSR(_offsets(deg_t, self.col.dtype), self.row().index_select(0, order).to(self.col.dtype),
                self.num_dst, deg_t, order)
        return CSR(self.ptr, self.col, self.num_src, self.deg, self.perm, t)

    def to(self, device: torch.device | str) -> "CSR":
        move = (lambda t: None if t is None else t.to(device))
        t = None if self.transpose is None else self.transpose.to(device)
        return CSR(move(self.ptr), move(self.col), self.num_src, move(self.deg), move(self.perm), t)

    def __repr__(self) -> str:
        return (f"CSR(num_src={self.num_src}, num_dst={self.num_dst}, num_edges={self.num_edges}, "
                f"index={str(self.col.dtype).replace('torch.', '')}, "
                f"transpose={self.transpose is not None})")


def _offsets(deg: Tensor, dtype: torch.dtype) -> Tensor:
    ptr = torch.zeros(deg.numel() + 1, dtype=torch.long, device=deg.device)
    torch.cumsum(deg, 0, out=ptr[1:])
    return ptr.to(dtype)


def to_csr(edge_index: Tensor, num_src: int, num_dst: int, *, transpose: bool = True,
           name: str = "edge_index") -> CSR:
    """Group ``edge_index`` ``[2, E]`` (row 0 sources, row 1 destinations) by destination.

    ``transpose=True`` also stores the reversed adjacency that backward passes need; build the
    CSR once per graph and reuse it across forward calls. Indices are int32 when every size fits
    (MKL/cuSPARSE run measurably faster on them). ``name`` labels errors (e.g. the edge type).
    """
    if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2:
        shape = tuple(edge_index.shape) if isinstance(edge_index, Tensor) else type(edge_index).__name__
        raise InputError(f"{name}: expected an edge_index of shape [2, E], got {shape}")
    if edge_index.dtype.is_floating_point or edge_index.dtype == torch.bool:
        raise InputError(f"{name}: edge_index must hold integer node ids, got {edge_index.dtype}")
    src, dst = edge_index[0].long(), edge_index[1].long()
    if src.numel() > 0:
        for ids, count, what in ((src, num_src, "source"), (dst, num_dst, "destination")):
            lo, hi = int(ids.min()), int(ids.max())
            if lo < 0 or hi >= count:
                raise InputError(f"{name}: {what} node id {lo if lo < 0 else hi} is out of range "
                                 f"for {count} {what} nodes")
    index_dtype = torch.int32 if max(num_src, num_dst, src.numel()) <= _INT32_LIMIT else torch.long
    perm = torch.sort(dst.to(index_dtype), stable=True).indices
    deg = torch.bincount(dst, minlength=num_dst)
    csr = CSR(_offsets(deg, index_dtype), src.index_select(0, perm).to(index_dtype), int(num_src), deg, perm)
    return csr.with_transpose() if transpose else csr


# ---------------------------------------------------------------------------------------------
# Raw kernels (no autograd). Features are [N, F] or [N, H, D]; edge values are [E] or [E, H].


def _csr_matrix(csr: CSR, values: Tensor, num_cols: int) -> Tensor:
    return torch.sparse_csr_tensor(csr.ptr, csr.col, values, (csr.num_dst, num_cols),
                                   check_invariants=False)


def _product_into(out: Tensor, csr: CSR, values: Tensor, x: Tensor) -> None:
    """``out = A(values) @ x`` for 2-D (possibly strided) ``out`` and ``x``."""
    matrix = _csr_matrix(csr, values, x.size(0))
    if out.device.type == "cpu":
        # beta=0 with out=: MKL writes the result in place; torch.sparse.mm would zero-fill a
        # buffer and copy it, two extra passes over the output.
        torch.addmm(out, matrix, x, beta=0.0, out=out)
    else:
        out.copy_(torch.sparse.mm(matrix, x))


def _spmm_raw(csr: CSR, values: Tensor | None, x: Tensor, row_scale: Tensor | None = None) -> Tensor:
    """``out[i] = row_scale[i] * sum_e values[e] * x[col[e]]`` over the edges e of row i."""
    dtype = x.dtype
    compute = dtype if dtype in _NATIVE_DTYPES else torch.float32
    x = x.to(compute)
    out = x.new_empty((csr.num_dst,) + x.shape[1:])
    if csr.num_edges == 0 or x.numel() == 0:
        return out.zero_().to(dtype)
    if values is None or values.dim() == 1:
        vals = x.new_ones(csr.num_edges) if values is None else values.to(compute).contiguous()
        _product_into(out.view(csr.num_dst, -1), csr, vals, x.reshape(x.size(0), -1))
    else:  # one product per head, each with its own edge weights, written into its slice
        for h in range(x.size(1)):
            _product_into(out[:, h], csr, values[:, h].to(compute).contiguous(), x[:, h])
    if row_scale is not None:
        out.mul_(row_scale.to(compute).view((-1,) + (1,) * (out.dim() - 1)))
    return out.to(dtype)


def _sddmm_raw(csr: CSR, a: Tensor, b: Tensor) -> Tensor:
    """``out[e] = <a[row[e]], b[col[e]]>`` (per head for ``[N, H, D]`` inputs)."""
    dtype = a.dtype
    compute = dtype if dtype in _NATIVE_DTYPES else torch.float32
    a, b = a.to(compute), b.to(compute)
    if csr.num_edges == 0:
        return a.new_zeros((0,) + a.shape[1:-1], dtype=dtype)
    pattern = _csr_matrix(csr, a.new_zeros(csr.num_edges), b.size(0))
    if a.dim() == 2:
        return torch.sparse.sampled_addmm(pattern, a, b.t(), beta=0.0).values().to(dtype)
    heads = [torch.sparse.sampled_addmm(pattern, a[:, h], b[:, h].t(), beta=0.0).values()
             for h in range(a.size(1))]
    return torch.stack(heads, dim=1).to(dtype)


def _transpose_of(csr: CSR) -> CSR:
    return csr.transpose if csr.transpose is not None else csr.with_transpose().transpose


class _SpMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, csr: CSR, values: Tensor | None, x: Tensor, row_scale: Tensor | None) -> Tensor:
        ctx.csr = csr
        ctx.save_for_backward(values, x, row_scale)
        return _spmm_raw(csr, values, x, row_scale)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        values, x, row_scale = ctx.saved_tensors
        if row_scale is not None:
            grad = grad * row_scale.to(grad.dtype).view((-1,) + (1,) * (grad.dim() - 1))
        grad_values = grad_x = None
        if ctx.needs_input_grad[1]:
            grad_values = _sddmm_raw(ctx.csr, grad, x)
            if values.dim() == 1 and grad_values.dim() == 2:  # shared weights, many heads
                grad_values = grad_values.sum(1)
        if ctx.needs_input_grad[2]:
            t = _transpose_of(ctx.csr)
            grad_x = _spmm_raw(t, None if values is None else values[t.perm], grad)
        return None, grad_values, grad_x, None


class _SDDMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, csr: CSR, a: Tensor, b: Tensor) -> Tensor:
        ctx.csr = csr
        ctx.save_for_backward(a, b)
        return _sddmm_raw(csr, a, b)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        a, b = ctx.saved_tensors
        grad_a = grad_b = None
        if ctx.needs_input_grad[1]:
            grad_a = _spmm_raw(ctx.csr, grad, b)
        if ctx.needs_input_grad[2]:
            t = _transpose_of(ctx.csr)
            grad_b = _spmm_raw(t, grad[t.perm], a)
        return None, grad_a, grad_b


# ---------------------------------------------------------------------------------------------
# Public kernels


def spmm(csr: CSR, x: Tensor, values: Tensor | None = None) -> Tensor:
    """Weighted neighbour sum ``out[i] = sum_{e in row i} values[e] * x[col[e]]``.

    Shapes: ``x`` ``[num_src, F]`` or ``[num_src, H, D]``; ``values`` ``None`` (all ones),
    ``[E]`` or ``[E, H]`` in CSR order; output ``[num_dst, ...]`` like ``x``. Differentiable in
    ``x`` and ``values``.
    """
    _check_rows(x, csr.num_src, "x_src")
    return _SpMM.apply(csr, values, x, None)


def sddmm(csr: CSR, a: Tensor, b: Tensor) -> Tensor:
    """Per-edge dot products ``out[e] = <a[row[e]], b[col[e]]>`` in CSR order.

    Shapes: ``a`` ``[num_dst, D]`` or ``[num_dst, H, D]``, ``b`` ``[num_src, ...]`` alike;
    output ``[E]`` or ``[E, H]``. Differentiable in ``a`` and ``b``.
    """
    _check_rows(a, csr.num_dst, "x_dst")
    _check_rows(b, csr.num_src, "x_src")
    return _SDDMM.apply(csr, a, b)


def segment_max(values: Tensor, csr: CSR) -> Tensor:
    """``[num_dst, ...]`` maximum of the per-edge ``values`` of each row; ``-inf`` for empty rows."""
    return torch.segment_reduce(values, "max", offsets=csr.ptr, axis=0, unsafe=True)


def segment_sum(values: Tensor, csr: CSR) -> Tensor:
    """``[num_dst, ...]`` sum of the per-edge ``values`` of each row; 0 for empty rows."""
    return torch.segment_reduce(values, "sum", offsets=csr.ptr, axis=0, unsafe=True)


def aggregate(x_src: Tensor, csr: CSR, reduce: Reduce = "sum") -> Tensor:
    """Reduce source features over each destination's incoming edges.

    .. math::
        \\mathbf{h}_i = \\bigoplus_{j \\in \\mathcal{N}(i)} \\mathbf{x}_j,
        \\quad \\bigoplus \\in \\{\\textstyle\\sum, \\mathrm{mean}, \\max\\}

    Sum and mean are one sparse product (no ``[E, d]`` tensor); max gathers ``[E, d]`` and
    segment-reduces. Destinations without edges get zeros.

    Shapes: ``x_src`` ``[num_src, d]`` (or ``[num_src, H, D]``) -> ``[num_dst, d]``.

    Example::

        csr = to_csr(torch.tensor([[0, 1, 1], [0, 0, 2]]), num_src=2, num_dst=3)
        h = aggregate(torch.randn(2, 8), csr, reduce="mean")   # [3, 8]
    """
    if reduce == "sum":
        return spmm(csr, x_src)
    if reduce == "mean":  # the 1/deg row scale is applied in place inside the product
        _check_rows(x_src, csr.num_src, "x_src")
        scale = csr.deg.clamp(min=1).reciprocal()
        return _SpMM.apply(csr, None, x_src, scale)
    if reduce == "max":
        _check_rows(x_src, csr.num_src, "x_src")
        out = torch.segment_reduce(x_src.index_select(0, csr.col), "max", offsets=csr.ptr,
                                   axis=0, unsafe=True)
        has_edges = (csr.deg > 0).view((-1,) + (1,) * (out.dim() - 1))
        return torch.where(has_edges, out, out.new_zeros(()))
    raise ValueError(f"aggregate: reduce must be 'sum', 'mean' or 'max', got {reduce!r}")


def _check_rows(x: Tensor, expected: int, what: str) -> None:
    if x.size(0) != expected:
        raise InputError(f"{what} has {x.size(0)} rows but the adjacency expects {expected}")
