"""CompGCN: neighbour features composed with learned relation vectors, weighted by direction."""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from mmgraph.data.naming import REVERSE_PREFIX
from mmgraph.nn.aggregate import CSR, aggregate
from mmgraph.nn.conv._utils import Metadata, check_channels, check_metadata, incoming, prepare_adjacency
from mmgraph.nn.named import name_rows

Composition = Literal["sub", "mult", "corr"]


def compose(x: Tensor, rel: Tensor, mode: Composition) -> Tensor:
    r"""The composition :math:`\phi(\mathbf{x}, \mathbf{z})` of CompGCN, row-wise.

    ``"sub"``: :math:`\mathbf{x} - \mathbf{z}`; ``"mult"``: :math:`\mathbf{x} \odot \mathbf{z}`;
    ``"corr"``: circular correlation :math:`(\mathbf{x} \star \mathbf{z})_k = \sum_i x_i z_{(i+k) \bmod d}`.
    """
    if mode == "sub":
        return x - rel
    if mode == "mult":
        return x * rel
    # FFT has no bf16/fp16 kernels on CPU: correlate in (at least) float32.
    exact = torch.promote_types(x.dtype, torch.float32)
    xf, rf = x.to(exact), rel.to(exact)
    n = x.size(-1)
    out = torch.fft.irfft(torch.conj(torch.fft.rfft(xf, dim=-1)) * torch.fft.rfft(rf, dim=-1), n=n, dim=-1)
    return out.to(x.dtype)


class CompGCNConv(nn.Module):
    r"""Composition-based multi-relational GCN layer (Vashishth et al. 2020).

    Every edge type :math:`r` has a learned relation vector :math:`\mathbf{z}_r`; edge types
    whose relation name starts with ``reverse_prefix`` use the inverse-direction weight
    :math:`\mathbf{W}_I`, the others :math:`\mathbf{W}_O`, and the self-loop uses
    :math:`\mathbf{W}_S` with its own vector :math:`\mathbf{z}_S`. For node :math:`i` of type
    :math:`t` with :math:`R_t` incoming edge types in the metadata:

    .. math::
        \mathbf{x}'_i = \frac{1}{R_t + 1}\Big(\mathbf{W}_S\, \phi(\mathbf{x}_i, \mathbf{z}_S)
          + \sum_{r = (s, \cdot, t)} \mathbf{W}_{\lambda(r)}
            \operatorname{mean}_{j \in \mathcal{N}_r(i)} \phi(\mathbf{x}_j, \mathbf{z}_r)\Big)
          + \mathbf{b}

    The mean is over each relation separately (zero without neighbours) and the average over
    the :math:`R_t + 1` directions follows the reference code's ``(in + out + loop) / 3``. All
    three compositions are linear in :math:`\mathbf{x}_j`, so the layer aggregates the raw
    features once per relation and composes per node: no per-edge tensor is built.

    Args:
        in_channels: input size of every node type (also the relation vectors' size).
        out_channels: output size.
        metadata: ``(node_types, edge_types)``; reverse edge types must be listed explicitly.
        composition: ``"sub"``, ``"mult"`` (default) or ``"corr"``.
        reverse_prefix: relation-name prefix that marks inverse-direction edge types.
        bias: learn an output bias.

    Shapes:
        - input: ``x_dict {t: [N_t, in_channels]}``, ``edge_index_dict {(s, r, t): [2, E] | CSR}``
        - output: ``{t: [N_t, out_channels]}`` for every type of ``x_dict``

    Example::

        conv = CompGCNConv(16, 32, (["a", "b"], [("a", "to", "b"), ("b", "rev_to", "a")]))
        ei = torch.tensor([[0, 1], [2, 2]])
        out = conv({"a": torch.randn(4, 16), "b": torch.randn(3, 16)},
                   {("a", "to", "b"): ei, ("b", "rev_to", "a"): ei.flip(0)})  # a: [4, 32], b: [3, 32]
    """

    def __init__(self, in_channels: int, out_channels: int, metadata: Metadata, *,
                 composition: Composition = "mult", reverse_prefix: str = REVERSE_PREFIX, bias: bool = True):
        super().__init__()
        if composition not in ("sub", "mult", "corr"):
            raise ValueError(f"composition must be 'sub', 'mult' or 'corr', got {composition!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.node_types, self.edge_types = check_metadata(metadata)
        self.composition = composition
        self.reverse_prefix = reverse_prefix
        self.w_original = nn.Linear(in_channels, out_channels, bias=False)
        self.w_inverse = nn.Linear(in_channels, out_channels, bias=False)
        self.w_loop = nn.Linear(in_channels, out_channels, bias=False)
        self.relation = nn.Parameter(torch.empty(len(self.edge_types), in_channels))
        name_rows(self, "relation", self.edge_types)  # row r: edge_types[r]
        self.loop_relation = nn.Parameter(torch.empty(1, in_channels))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self._relation_index = {et: r for r, et in enumerate(self.edge_types)}
        self._incoming = incoming(self.node_types, self.edge_types)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in (self.w_original, self.w_inverse, self.w_loop):
            nn.init.xavier_uniform_(lin.weight)
        nn.init.xavier_uniform_(self.relation)
        nn.init.xavier_uniform_(self.loop_relation)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def _direction(self, edge_type: tuple[str, str, str]) -> nn.Linear:
        return self.w_inverse if edge_type[1].startswith(self.reverse_prefix) else self.w_original

    def _relation(self, x_src: Tensor, csr: CSR, rel: Tensor) -> Tensor:
        mean = compose(aggregate(x_src, csr, "mean"), rel, self.composition)
        if self.composition == "sub":  # mean(x_j - z) = mean(x_j) - z only where there are x_j
            mean = mean * (csr.deg > 0).to(mean.dtype).unsqueeze(-1)
        return mean

    def forward(self, x_dict: dict[str, Tensor],
                edge_index_dict: dict[tuple[str, str, str], Tensor | CSR]) -> dict[str, Tensor]:
        check_channels(x_dict, self.in_channels, type(self).__name__)
        csrs = prepare_adjacency(x_dict, edge_index_dict, self.node_types, self.edge_types)
        out_dict: dict[str, Tensor] = {}
        for t, x in x_dict.items():
            out = self.w_loop(compose(x, self.loop_relation, self.composition))
            for et in self._incoming[t]:
                if et in csrs:
                    rel = self.relation[self._relation_index[et]]
                    out = out + self._direction(et)(self._relation(x_dict[et[0]], csrs[et], rel))
            out = out / (len(self._incoming[t]) + 1)
            out_dict[t] = out if self.bias is None else out + self.bias
        return out_dict

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
                f"num_relations={len(self.edge_types)}, composition={self.composition!r})")
