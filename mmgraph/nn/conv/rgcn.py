"""Relational GCN with basis decomposition over the edge types of a heterogeneous graph."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from mmgraph.nn.aggregate import CSR, aggregate
from mmgraph.nn.conv._utils import Metadata, check_channels, check_metadata, incoming, prepare_adjacency
from mmgraph.nn.named import NamedModuleDict, name_rows


class RGCNConv(nn.Module):
    r"""R-GCN (Schlichtkrull et al. 2018): one weight per relation, mean per relation.

    For node :math:`i` of type :math:`t`, with each edge type :math:`r` a relation:

    .. math::
        \mathbf{x}'_i = \mathbf{W}^{\mathrm{root}}_t \mathbf{x}_i + \mathbf{b}_t
        + \sum_{r = (s, \cdot, t)} \frac{1}{|\mathcal{N}_r(i)|}
          \sum_{j \in \mathcal{N}_r(i)} \mathbf{W}_r \mathbf{x}_j,
        \qquad \mathbf{W}_r = \sum_{b=1}^{B} a_{rb} \mathbf{V}_b

    With ``num_bases=None`` every :math:`\mathbf{W}_r` is a free matrix. On a homogeneous view
    (all types concatenated, relation id = edge-type position) and equal root weights this is
    PyG's ``RGCNConv(num_bases=B, aggr="mean")``.

    Args:
        in_channels: input size of every node type.
        out_channels: output size.
        metadata: ``(node_types, edge_types)``; relation ``r`` is ``edge_types[r]``.
        num_bases: number of shared bases :math:`B` (``None``: no decomposition).
        bias: learn a bias per node type.

    Shapes:
        - input: ``x_dict {t: [N_t, in_channels]}``, ``edge_index_dict {(s, r, t): [2, E] | CSR}``
        - output: ``{t: [N_t, out_channels]}`` for every type of ``x_dict``

    Example::

        conv = RGCNConv(16, 32, (["a", "b"], [("a", "to", "b"), ("b", "rev_to", "a")]), num_bases=2)
        out = conv({"a": torch.randn(4, 16), "b": torch.randn(3, 16)},
                   {("a", "to", "b"): torch.tensor([[0, 1], [2, 2]])})      # a: [4, 32], b: [3, 32]
    """

    def __init__(self, in_channels: int, out_channels: int, metadata: Metadata, *,
                 num_bases: int | None = None, bias: bool = True):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.node_types, self.edge_types = check_metadata(metadata)
        num_relations = len(self.edge_types)
        if num_bases is not None and num_bases < 1:
            raise ValueError(f"num_bases must be a positive integer or None, got {num_bases}")
        self.num_bases = num_bases
        if num_bases is None:
            self.weight = nn.Parameter(torch.empty(num_relations, in_channels, out_channels))
            self.register_parameter("comp", None)
        else:
            self.weight = nn.Parameter(torch.empty(num_bases, in_channels, out_channels))
            self.comp = nn.Parameter(torch.empty(num_relations, num_bases))
        # weight (without bases) or comp: row r is edge_types[r]; bases are shared by all relations
        name_rows(self, "weight" if num_bases is None else "comp", self.edge_types)
        self.root = NamedModuleDict({t: nn.Linear(in_channels, out_channels, bias=bias)
                                     for t in self.node_types}, legacy="pyg")
        self._relation_index = {et: r for r, et in enumerate(self.edge_types)}
        self._incoming = incoming(self.node_types, self.edge_types)
        self.reset_parameters()

    trims_dst = True   # forward takes num_dst_dict

    def reset_parameters(self) -> None:
        # Glorot on the 2-D slices, as in the paper's reference code and PyG.
        for w in self.weight:
            nn.init.xavier_uniform_(w)
        if self.comp is not None:
            nn.init.xavier_uniform_(self.comp)
        for lin in self.root.values():
            nn.init.xavier_uniform_(lin.weight)
            if lin.bias is not None:
                nn.init.zeros_(lin.bias)

    def relation_weights(self) -> Tensor:
        """``[num_relations, in_channels, out_channels]``, composed from the bases if any."""
        if self.comp is None:
            return self.weight
        return (self.comp @ self.weight.flatten(1)).view(-1, self.in_channels, self.out_channels)

    def _relation(self, x_src: Tensor, csr: CSR, weight: Tensor) -> Tensor:
        # Mean commutes with the linear map: aggregate over the narrower width.
        if self.out_channels < self.in_channels:
            return aggregate(x_src @ weight, csr, "mean")
        return aggregate(x_src, csr, "mean") @ weight

    def forward(self, x_dict: dict[str, Tensor],
                edge_index_dict: dict[tuple[str, str, str], Tensor | CSR],
                num_dst_dict: dict[str, int] | None = None) -> dict[str, Tensor]:
        """``num_dst_dict``: compute only the first rows of a type (a trimmed layer)."""
        check_channels(x_dict, self.in_channels, type(self).__name__)
        csrs = prepare_adjacency(x_dict, edge_index_dict, self.node_types, self.edge_types, num_dst_dict)
        weights = self.relation_weights()
        out_dict: dict[str, Tensor] = {}
        for t, x in x_dict.items():
            x_dst = x if num_dst_dict is None else x[:num_dst_dict.get(t, x.size(0))]
            out = self.root[t](x_dst)  # a fresh tensor autograd does not keep: accumulate in place
            for et in self._incoming[t]:
                if et in csrs:
                    out.add_(self._relation(x_dict[et[0]], csrs[et], weights[self._relation_index[et]]))
            out_dict[t] = out
        return out_dict

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
                f"num_relations={len(self.edge_types)}, num_bases={self.num_bases})")
