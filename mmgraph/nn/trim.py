r"""Per-layer trimming of a hop-ordered sampled subgraph (as PyG's ``trim_to_layer``).

A neighbour sampler that adds nodes hop by hop (seeds first) and expands each node once gives
a subgraph where an edge sampled at hop :math:`k` ends at a node added at hop :math:`k-1` and
starts at one added at hop :math:`\le k`. With :math:`L` layers, layer :math:`l` (0-based) then
needs as input only the nodes of hops :math:`0..L-l` and computes only those of hops
:math:`0..L-l-1`: the last layer computes the seeds alone. Because node ids are ordered by hop,
every one of these sets is a prefix of the rows, and the in-edges of a prefix of destinations
are a prefix of the destination-grouped CSR: trimming is slicing, no edge is re-sorted.

The seeds' embeddings equal the untrimmed ones (up to float summation order) for any layer
that is per destination node; BatchNorm in training mode (statistics over the rows computed)
and random draws whose shape depends on the row count (dropout, the variational noise) are
the exceptions.
"""
from __future__ import annotations

import torch

from mmgraph.errors import InputError
from mmgraph.nn.aggregate import CSR

EdgeType = tuple[str, str, str]

__all__ = ["layer_rows", "trim_csr"]


def layer_rows(num_sampled_nodes: dict[str, list[int]], num_layers: int, layer: int,
               num_rows: dict[str, int]) -> tuple[dict[str, int], dict[str, int]]:
    """(input rows, output rows) per node type of layer ``layer`` of ``num_layers``.

    ``num_rows`` gives each type's rows; a type without counts is not trimmed.

    Example::

        layer_rows({"a": [2, 3, 4]}, 2, 0, {"a": 9})   # ({'a': 9}, {'a': 5})
        layer_rows({"a": [2, 3, 4]}, 2, 1, {"a": 9})   # ({'a': 5}, {'a': 2})
    """
    keep_in, keep_out = num_layers - layer + 1, num_layers - layer
    n_in, n_out = {}, {}
    for t, n in num_rows.items():
        counts = num_sampled_nodes.get(t)
        if counts is None:
            n_in[t] = n_out[t] = n
            continue
        if sum(counts) != n:
            raise InputError(f"num_sampled_nodes_dict[{t!r}] counts {sum(counts)} nodes, the input has {n} rows")
        n_in[t], n_out[t] = sum(counts[:keep_in]), sum(counts[:keep_out])
    return n_in, n_out


def trim_csr(csr: CSR, num_src: int, keep_dst: int, num_dst: int | None = None, *,
             transpose: bool = False) -> CSR:
    """The in-edges of destinations ``[0, keep_dst)`` as a CSR over ``num_src`` sources and
    ``num_dst`` destinations (default ``keep_dst``; rows past ``keep_dst`` get no edges).

    The sources of the kept edges must lie below ``num_src`` (true of a hop-ordered sample).
    ``transpose`` also builds the reversed adjacency that backward passes use.
    """
    num_dst = keep_dst if num_dst is None else num_dst
    if keep_dst == csr.num_dst and num_dst == keep_dst and num_src == csr.num_src:
        return csr.with_transpose() if transpose else csr
    end = int(csr.ptr[keep_dst])
    ptr, deg = csr.ptr[:keep_dst + 1], csr.deg[:keep_dst]
    if num_dst > keep_dst:
        ptr = torch.cat([ptr, ptr[-1:].expand(num_dst - keep_dst)])
        deg = torch.cat([deg, deg.new_zeros(num_dst - keep_dst)])
    perm = None if csr.perm is None else csr.perm[:end]
    out = CSR(ptr, csr.col[:end], int(num_src), deg, perm)
    return out.with_transpose() if transpose else out
