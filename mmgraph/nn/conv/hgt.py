"""Heterogeneous Graph Transformer with a CSR segment softmax and no per-edge feature tensors."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmgraph.nn.aggregate import CSR, sddmm, segment_max, segment_sum, spmm
from mmgraph.nn.conv._utils import Metadata, check_channels, check_metadata, incoming, prepare_adjacency
from mmgraph.nn.named import NamedModuleDict, NamedParameterDict, name_rows


def _per_head(x: Tensor, weight: Tensor) -> Tensor:
    """``[N, H, D] @ [H, D, D]`` head by head, as one GEMM with a block-diagonal weight."""
    n, heads, dim = x.shape
    return (x.reshape(n, heads * dim) @ torch.block_diag(*weight.to(x.dtype).unbind(0))).view(n, heads, dim)


def _per_edge(node_values: Tensor, csr: CSR) -> Tensor:
    """Repeat each destination's row once per incoming edge (CSR order)."""
    return node_values.repeat_interleave(csr.deg, dim=0, output_size=csr.num_edges)


class HGTConv(nn.Module):
    r"""Heterogeneous Graph Transformer layer (Hu et al. 2020).

    Per node type :math:`\tau`, keys, queries and values split into :math:`H` heads of size
    :math:`D`; per relation :math:`r` and head, :math:`\mathbf{W}^{\mathrm{att}}_{r}`,
    :math:`\mathbf{W}^{\mathrm{msg}}_{r}` and a prior :math:`\mu_r`. For an edge
    :math:`j \to i` of relation :math:`r`:

    .. math::
        \alpha_{ij} = \operatorname{softmax}_{(j, r) \in \mathcal{N}(i)}
            \Big(\mu_r \, \frac{(\mathbf{k}_j \mathbf{W}^{\mathrm{att}}_r)^\top
            \mathbf{q}_i}{\sqrt{D}}\Big), \qquad
        \tilde{\mathbf{h}}_i = \Big\Vert_{h=1}^{H}
            \sum_{(j, r) \in \mathcal{N}(i)} \alpha^h_{ij}\, \mathbf{v}^h_j \mathbf{W}^{\mathrm{msg}, h}_r

    .. math::
        \mathbf{x}'_i = \beta_\tau\, \mathbf{A}_\tau\, \mathrm{GELU}(\tilde{\mathbf{h}}_i)
            + (1 - \beta_\tau)\, \mathbf{x}_i, \qquad \beta_\tau = \sigma(s_\tau)

    The softmax runs over all incoming edges of all relations together (as in the paper and
    PyG). The gated skip exists when ``in_channels == out_channels``. A node type that is the
    target of no relation uses its own value :math:`\tilde{\mathbf{h}}_i = \mathbf{v}_i`
    (a self-message) instead of PyG's ``None``. Scores and messages are computed with
    ``sddmm``/``spmm`` on the CSR adjacency: the only per-edge tensors are ``[E, H]``.

    Args:
        in_channels: input size of every node type.
        out_channels: output size, divisible by ``heads``.
        metadata: ``(node_types, edge_types)``.
        heads: number of attention heads :math:`H`.
        bias: biases in the K/Q/V and output projections.

    Shapes:
        - input: ``x_dict {t: [N_t, in_channels]}``, ``edge_index_dict {(s, r, t): [2, E] | CSR}``
        - output: ``{t: [N_t, out_channels]}`` for every type of ``x_dict``

    Example::

        conv = HGTConv(16, 16, (["a", "b"], [("a", "to", "b")]), heads=2)
        out = conv({"a": torch.randn(4, 16), "b": torch.randn(3, 16)},
                   {("a", "to", "b"): torch.tensor([[0, 1, 3], [0, 2, 2]])})   # a: [4, 16], b: [3, 16]
    """

    def __init__(self, in_channels: int, out_channels: int, metadata: Metadata, *,
                 heads: int = 1, bias: bool = True):
        super().__init__()
        if heads < 1 or out_channels % heads != 0:
            raise ValueError(f"out_channels ({out_channels}) must be divisible by heads ({heads})")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.heads = heads
        self.node_types, self.edge_types = check_metadata(metadata)
        dim, num_relations = out_channels // heads, len(self.edge_types)
        types = self.node_types
        self.kqv = NamedModuleDict({t: nn.Linear(in_channels, 3 * out_channels, bias=bias) for t in types},
                                   legacy="pyg")
        self.out_lin = NamedModuleDict({t: nn.Linear(out_channels, out_channels, bias=bias) for t in types},
                                       legacy="pyg")
        # Stacked over relations (row r: edge_types[r]) so attention picks a row, not a module.
        self.k_rel = nn.Parameter(torch.empty(num_relations, heads, dim, dim))
        self.v_rel = nn.Parameter(torch.empty(num_relations, heads, dim, dim))
        self.p_rel = nn.Parameter(torch.empty(num_relations, heads))
        for name in ("k_rel", "v_rel", "p_rel"):
            name_rows(self, name, self.edge_types)
        if in_channels == out_channels:
            self.skip = NamedParameterDict({t: nn.Parameter(torch.empty(1)) for t in self.node_types},
                                           legacy="pyg")
        else:
            self.skip = None
        self._relation_index = {et: r for r, et in enumerate(self.edge_types)}
        self._incoming = incoming(self.node_types, self.edge_types)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in list(self.kqv.values()) + list(self.out_lin.values()):
            lin.reset_parameters()
        bound = 1.0 / math.sqrt(self.out_channels // self.heads)  # PyG's HeteroLinear init
        nn.init.uniform_(self.k_rel, -bound, bound)
        nn.init.uniform_(self.v_rel, -bound, bound)
        nn.init.ones_(self.p_rel)
        if self.skip is not None:
            for s in self.skip.values():
                nn.init.ones_(s)

    def _attend(self, q: Tensor, relations: list[tuple[int, CSR, Tensor, Tensor]]) -> Tensor:
        """Softmax over every incoming edge of ``relations`` (index, csr, k_src, v_src)."""
        scale = 1.0 / math.sqrt(q.size(-1))
        scores = []
        for r, csr, k, _ in relations:
            # q . (k W) = (q W^T) . k: transform whichever side has fewer nodes
            if csr.num_src <= csr.num_dst:
                a, b = q, _per_head(k, self.k_rel[r])
            else:
                a, b = _per_head(q, self.k_rel[r].transpose(-1, -2)), k
            score = sddmm(csr, a, b)
            exact = torch.promote_types(score.dtype, torch.float32)  # bf16 scores: softmax in fp32
            scores.append(score.to(exact) * (self.p_rel[r].to(exact) * scale))  # [E_r, H]
        with torch.no_grad():  # a per-row shift: softmax is invariant to it, no gradient needed
            shift = torch.stack([segment_max(s, rel[1]) for s, rel in zip(scores, relations)]).amax(0)
            shift = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
        weights = [torch.exp(s - _per_edge(shift, csr)) for s, (_, csr, _, _) in zip(scores, relations)]
        total = sum(segment_sum(w, csr) for w, (_, csr, _, _) in zip(weights, relations))
        out = None
        for w, (r, csr, _, v) in zip(weights, relations):
            alpha = w / _per_edge(total, csr)  # [E_r, H]; only rows with edges are gathered
            # sum_j alpha_j v_j W = (sum_j alpha_j v_j) W: again the side with fewer nodes
            if csr.num_src <= csr.num_dst:
                message = spmm(csr, _per_head(v, self.v_rel[r]), alpha)
            else:
                message = _per_head(spmm(csr, v, alpha), self.v_rel[r])
            out = message if out is None else out.add_(message)
        return out

    def forward(self, x_dict: dict[str, Tensor],
                edge_index_dict: dict[tuple[str, str, str], Tensor | CSR]) -> dict[str, Tensor]:
        check_channels(x_dict, self.in_channels, type(self).__name__)
        csrs = prepare_adjacency(x_dict, edge_index_dict, self.node_types, self.edge_types)
        H, D = self.heads, self.out_channels // self.heads
        k_dict, q_dict, v_dict = {}, {}, {}
        for t, x in x_dict.items():
            k, q, v = self.kqv[t](x).view(-1, 3, H, D).unbind(1)
            k_dict[t], q_dict[t], v_dict[t] = k, q, v
        out_dict: dict[str, Tensor] = {}
        for t, x in x_dict.items():
            if self._incoming[t]:
                relations = [(self._relation_index[et], csrs[et], k_dict[et[0]], v_dict[et[0]])
                             for et in self._incoming[t] if et in csrs]
                h = self._attend(q_dict[t], relations) if relations else torch.zeros_like(q_dict[t])
            else:
                h = v_dict[t]  # target of no relation: a message from itself
            out = self.out_lin[t](F.gelu(h.reshape(-1, self.out_channels)))
            if self.skip is not None:  # beta * out + (1 - beta) * x in one pass
                out = torch.lerp(x, out, self.skip[t].sigmoid())
            out_dict[t] = out
        return out_dict

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
                f"num_relations={len(self.edge_types)}, heads={self.heads})")
