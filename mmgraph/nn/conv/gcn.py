"""GCN (Kipf & Welling 2017): symmetric degree normalisation with self-loops, per node type."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from mmgraph.nn.aggregate import CSR, aggregate
from mmgraph.nn.conv._utils import Metadata, check_channels, check_metadata, incoming, prepare_adjacency
from mmgraph.nn.named import NamedModuleDict, NamedParameterDict


def _out_degree(csr: CSR) -> Tensor:
    if csr.transpose is not None:
        return csr.transpose.deg
    return torch.bincount(csr.col.long(), minlength=csr.num_src)


class GCNConv(nn.Module):
    r"""Graph convolution with the symmetric normalisation of PyG's ``GCNConv``, for typed graphs.

    The relations between nodes of one type :math:`t` form one graph :math:`A_t` (their union,
    as PyG's homogeneous ``GCNConv`` would see it), normalised with self-loops:

    .. math::
        \mathbf{x}'_i = \mathbf{W}_t \sum_{j \in \mathcal{N}(i) \cup \{i\}}
          \frac{\mathbf{x}_j}{\sqrt{\hat d_i \hat d_j}} + \mathbf{b}_t
        + \sum_{r = (s, \cdot, t),\, s \ne t} \mathbf{W}_r \sum_{j \in \mathcal{N}_r(i)}
          \frac{\mathbf{x}_j}{\sqrt{d^{\mathrm{in}}_{r,i}\, d^{\mathrm{out}}_{r,j}}}

    with :math:`\hat d_i = 1 + \sum_r \deg^{\mathrm{in}}_r(i)` over the same-type relations
    (the in-degree, as PyG's ``gcn_norm`` counts it). On a graph with one node type and its edges
    listed both ways this equals ``torch_geometric.nn.GCNConv`` with the same weights. Relations
    between different types (no self-loop exists there) use the bipartite symmetric normalisation.
    The sums are scaled sparse products: no ``[E]`` edge-weight tensor is built.

    Args:
        in_channels: input size of every node type.
        out_channels: output size.
        metadata: ``(node_types, edge_types)``.
        bias: learn a bias per node type.

    Shapes:
        - input: ``x_dict {t: [N_t, in_channels]}``, ``edge_index_dict {(s, r, t): [2, E] | CSR}``
        - output: ``{t: [N_t, out_channels]}`` for every type of ``x_dict``

    Example::

        conv = GCNConv(16, 32, (["paper"], [("paper", "cites", "paper"), ("paper", "rev_cites", "paper")]))
        ei = torch.tensor([[0, 1, 2], [1, 2, 0]])
        out = conv({"paper": torch.randn(3, 16)}, {("paper", "cites", "paper"): ei,
                                                   ("paper", "rev_cites", "paper"): ei.flip(0)})   # [3, 32]
    """

    def __init__(self, in_channels: int, out_channels: int, metadata: Metadata, *, bias: bool = True):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.node_types, self.edge_types = check_metadata(metadata)
        self.lin_self = NamedModuleDict({t: nn.Linear(in_channels, out_channels, bias=False)
                                         for t in self.node_types}, legacy="pyg")
        self.lin_rel = NamedModuleDict({et: nn.Linear(in_channels, out_channels, bias=False)
                                        for et in self.edge_types if et[0] != et[2]}, legacy="pyg")
        self.bias = NamedParameterDict({t: nn.Parameter(torch.empty(out_channels)) for t in self.node_types},
                                       legacy="pyg") if bias else None
        self._incoming = incoming(self.node_types, self.edge_types)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Glorot weights and zero bias, as PyG's GCNConv initialises them
        for lin in list(self.lin_self.values()) + list(self.lin_rel.values()):
            nn.init.xavier_uniform_(lin.weight)
        if self.bias is not None:
            for b in self.bias.values():
                nn.init.zeros_(b)

    # a message's weight reads its source's degree, which trimming the source's own in-edges
    # would change: HeteroGNN runs this conv on the whole sample
    trimmable = False

    def forward(self, x_dict: dict[str, Tensor],
                edge_index_dict: dict[tuple[str, str, str], Tensor | CSR]) -> dict[str, Tensor]:
        check_channels(x_dict, self.in_channels, type(self).__name__)
        csrs = prepare_adjacency(x_dict, edge_index_dict, self.node_types, self.edge_types)
        out_dict: dict[str, Tensor] = {}
        for t, x in x_dict.items():
            h = self.lin_self[t](x)  # transform first: the same weight for every same-type message
            same = [csrs[et] for et in self._incoming[t] if et[0] == t and et in csrs]
            deg = 1 + sum((c.deg for c in same), torch.zeros(x.size(0), dtype=torch.long, device=x.device))
            inv_sqrt = deg.to(h.dtype).rsqrt().unsqueeze(-1)
            scaled = h * inv_sqrt
            out = scaled.clone()  # the self-loop, before the last 1/sqrt(d_i)
            for csr in same:
                out = out + aggregate(scaled, csr, "sum")
            out = out * inv_sqrt
            for et in self._incoming[t]:
                if et[0] != t and et in csrs:
                    csr = csrs[et]
                    src_scale = _out_degree(csr).clamp(min=1).to(h.dtype).rsqrt().unsqueeze(-1)
                    dst_scale = csr.deg.clamp(min=1).to(h.dtype).rsqrt().unsqueeze(-1)
                    out = out + dst_scale * aggregate(self.lin_rel[et](x_dict[et[0]]) * src_scale, csr, "sum")
            out_dict[t] = out + self.bias[t] if self.bias is not None else out
        return out_dict

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}, num_relations={len(self.edge_types)})"
