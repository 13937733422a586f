"""GraphSAGE per relation, summed over the relations that end at a node type."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from mmgraph.nn.aggregate import CSR, Reduce, aggregate
from mmgraph.nn.conv._utils import Metadata, check_channels, check_metadata, incoming, prepare_adjacency
from mmgraph.nn.named import NamedModuleDict


class RelSAGEConv(nn.Module):
    r"""Relational GraphSAGE (Hamilton et al. 2017), one neighbour weight per relation.

    For node :math:`i` of type :math:`t`:

    .. math::
        \mathbf{x}'_i = \mathbf{W}^{\mathrm{root}}_t \mathbf{x}_i + \mathbf{b}_t
        + \sum_{r = (s, \cdot, t)} \mathbf{W}_r \,
          \operatorname{mean}_{j \in \mathcal{N}_r(i)} \mathbf{x}_j

    This is PyG's ``HeteroConv({r: SAGEConv((-1, -1), out)}, aggr="sum")`` with the per-relation
    root weights and biases folded into one per node type
    (:math:`\mathbf{W}^{\mathrm{root}}_t = \sum_r \mathbf{W}^{\mathrm{lin\_r}}_r`), so node types
    without incoming edges keep a representation (their root transform).

    Args:
        in_channels: input size of every node type.
        out_channels: output size.
        metadata: ``(node_types, edge_types)``.
        aggr: neighbour reduction, ``"mean"`` (default), ``"sum"`` or ``"max"``.
        bias: learn a bias per node type.
        normalize: L2-normalise each output row.

    Shapes:
        - input: ``x_dict {t: [N_t, in_channels]}``, ``edge_index_dict {(s, r, t): [2, E] | CSR}``
        - output: ``{t: [N_t, out_channels]}`` for every type of ``x_dict``

    Example::

        conv = RelSAGEConv(16, 32, (["a", "b"], [("a", "to", "b")]))
        out = conv({"a": torch.randn(4, 16), "b": torch.randn(3, 16)},
                   {("a", "to", "b"): torch.tensor([[0, 1, 3], [0, 2, 2]])})   # a: [4, 32], b: [3, 32]
    """

    def __init__(self, in_channels: int, out_channels: int, metadata: Metadata, *,
                 aggr: Reduce = "mean", bias: bool = True, normalize: bool = False):
        super().__init__()
        if aggr not in ("mean", "sum", "max"):
            raise ValueError(f"aggr must be 'mean', 'sum' or 'max', got {aggr!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.node_types, self.edge_types = check_metadata(metadata)
        self.aggr = aggr
        self.normalize = normalize
        self.lin_rel = NamedModuleDict({et: nn.Linear(in_channels, out_channels, bias=False)
                                        for et in self.edge_types}, legacy="pyg")
        self.lin_root = NamedModuleDict({t: nn.Linear(in_channels, out_channels, bias=bias)
                                         for t in self.node_types}, legacy="pyg")
        self._incoming = incoming(self.node_types, self.edge_types)
        self.reset_parameters()

    trims_dst = True   # forward takes num_dst_dict

    def reset_parameters(self) -> None:
        for lin in list(self.lin_rel.values()) + list(self.lin_root.values()):
            lin.reset_parameters()

    def _relation(self, x_src: Tensor, csr: CSR, lin: nn.Linear) -> Tensor:
        # Sum and mean commute with the linear map: aggregate over the narrower width.
        if self.aggr != "max" and self.out_channels < self.in_channels:
            return aggregate(lin(x_src), csr, self.aggr)
        return lin(aggregate(x_src, csr, self.aggr))

    def forward(self, x_dict: dict[str, Tensor],
                edge_index_dict: dict[tuple[str, str, str], Tensor | CSR],
                num_dst_dict: dict[str, int] | None = None) -> dict[str, Tensor]:
        """``num_dst_dict``: compute only the first rows of a type (a trimmed layer)."""
        check_channels(x_dict, self.in_channels, type(self).__name__)
        csrs = prepare_adjacency(x_dict, edge_index_dict, self.node_types, self.edge_types, num_dst_dict)
        out_dict: dict[str, Tensor] = {}
        for t, x in x_dict.items():
            rows = x.size(0) if num_dst_dict is None else num_dst_dict.get(t, x.size(0))
            x_dst = x if rows == x.size(0) else x[:rows]
            out = self.lin_root[t](x_dst)  # a fresh tensor autograd does not keep: accumulate in place
            for et in self._incoming[t]:
                if et in csrs:
                    out.add_(self._relation(x_dict[et[0]], csrs[et], self.lin_rel[et]))
            out_dict[t] = F.normalize(out, p=2.0, dim=-1) if self.normalize else out
        return out_dict

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
                f"num_relations={len(self.edge_types)}, aggr={self.aggr!r})")
