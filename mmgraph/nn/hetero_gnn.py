"""A stack of heterogeneous conv layers with residuals, normalisation and dropout per node type."""
from __future__ import annotations

from typing import Callable, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmgraph.nn.aggregate import CSR
from mmgraph.nn.conv._utils import Metadata, check_metadata, prepare_adjacency
from mmgraph.nn.conv.compgcn import CompGCNConv
from mmgraph.nn.conv.gcn import GCNConv
from mmgraph.nn.conv.hgt import HGTConv
from mmgraph.nn.conv.rel_sage import RelSAGEConv
from mmgraph.nn.conv.rgcn import RGCNConv
from mmgraph.nn.named import NamedModuleDict
from mmgraph.nn.trim import layer_rows, trim_csr

CONVS: dict[str, type[nn.Module]] = {
    "sage": RelSAGEConv,
    "rgcn": RGCNConv,
    "hgt": HGTConv,
    "compgcn": CompGCNConv,
    "gcn": GCNConv,
}
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "gelu": F.gelu,
    "relu": F.relu,
    "silu": F.silu,
    "elu": F.elu,
    "tanh": torch.tanh,
}
Norm = Literal["layer", "batch", "none"]


def _norm(kind: Norm, channels: int) -> nn.Module:
    if kind == "layer":
        return nn.LayerNorm(channels)
    if kind == "batch":
        return nn.BatchNorm1d(channels)
    return nn.Identity()


class HeteroGNN(nn.Module):
    r"""``num_layers`` heterogeneous conv layers of width ``channels``.

    Layer :math:`l` maps every node type's features as

    .. math::
        \mathbf{h} = \mathrm{conv}_l(\mathbf{x})_t, \qquad
        \mathbf{x}_t \leftarrow \mathbf{x}_t\,[\text{residual}] +
        \begin{cases}
          \mathrm{Dropout}(\sigma(\mathrm{Norm}_{l,t}(\mathbf{h}))) & l < L \\
          \mathbf{h} & l = L
        \end{cases}

    so the last layer is linear (like PyG's ``BasicGNN``), which suits the variational head that
    follows. Reverse edge types are never added: list them in ``metadata`` and pass them in
    ``edge_index_dict`` when messages should flow both ways.

    Args:
        channels: width of the input and of every layer.
        metadata: ``(node_types, edge_types)``.
        num_layers: number of conv layers.
        conv: ``"sage"`` (:class:`RelSAGEConv`), ``"rgcn"``, ``"hgt"`` or ``"compgcn"``, or a conv
            class with the ``(in, out, metadata, **options)`` signature.
        residual: add each layer's input to its output.
        norm: ``"layer"``, ``"batch"`` or ``"none"``, one module per layer and node type.
        dropout: dropout probability after each hidden layer.
        act: ``"gelu"``, ``"relu"``, ``"silu"``, ``"elu"``, ``"tanh"`` or a callable.
        **conv_options: keyword options of the conv class (``heads``, ``num_bases``, ...).

    Shapes:
        - input: ``x_dict {t: [N_t, channels]}``, ``edge_index_dict {(s, r, t): [2, E] | CSR}``
        - output: ``{t: [N_t, channels]}`` for every type of ``x_dict``

    Example::

        gnn = HeteroGNN(32, (["a", "b"], [("a", "to", "b"), ("b", "rev_to", "a")]), conv="hgt", heads=4)
        ei = torch.tensor([[0, 1], [2, 2]])
        out = gnn({"a": torch.randn(4, 32), "b": torch.randn(3, 32)},
                  {("a", "to", "b"): ei, ("b", "rev_to", "a"): ei.flip(0)})     # a: [4, 32], b: [3, 32]
    """

    def __init__(self, channels: int, metadata: Metadata, *, num_layers: int = 2,
                 conv: str | type[nn.Module] = "sage", residual: bool = True, norm: Norm = "layer",
                 dropout: float = 0.0, act: str | Callable[[Tensor], Tensor] = "gelu", **conv_options):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be at least 1, got {num_layers}")
        if isinstance(conv, str) and conv not in CONVS:
            raise ValueError(f"conv must be one of {sorted(CONVS)} or a conv class, got {conv!r}")
        if norm not in ("layer", "batch", "none"):
            raise ValueError(f"norm must be 'layer', 'batch' or 'none', got {norm!r}")
        if isinstance(act, str) and act not in ACTIVATIONS:
            raise ValueError(f"act must be one of {sorted(ACTIVATIONS)} or a callable, got {act!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.channels = channels
        self.node_types, self.edge_types = check_metadata(metadata)
        self.num_layers = num_layers
        self.conv_name = conv if isinstance(conv, str) else conv.__name__
        self.residual = residual
        self.norm = norm
        self.dropout = dropout
        self.act = ACTIVATIONS[act] if isinstance(act, str) else act
        conv_class = CONVS[conv] if isinstance(conv, str) else conv
        meta = (self.node_types, self.edge_types)
        self.convs = nn.ModuleList(conv_class(channels, channels, meta, **conv_options)
                                   for _ in range(num_layers))
        self.norms = nn.ModuleList(NamedModuleDict({t: _norm(norm, channels) for t in self.node_types},
                                                   legacy="pyg")
                                   for _ in range(num_layers - 1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for conv in self.convs:
            conv.reset_parameters()
        for norms in self.norms:
            for module in norms.values():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()

    def forward(self, x_dict: dict[str, Tensor],
                edge_index_dict: dict[tuple[str, str, str], Tensor | CSR],
                num_sampled_nodes_dict: dict[str, list[int]] | None = None) -> dict[str, Tensor]:
        """All layers; with ``num_sampled_nodes_dict`` (a hop-ordered sample's nodes per hop,
        see :mod:`mmgraph.nn.trim`) layer l computes only the rows the layers above read, and
        the output holds only the seeds (hop 0) of each type. A conv whose messages read the
        source's degree (``trimmable = False``: GCN) runs on the whole sample instead."""
        untrimmable = not all(getattr(conv, "trimmable", True) for conv in self.convs)
        if num_sampled_nodes_dict is None or untrimmable:
            # group [2, E] tensors by destination once, not once per layer
            csrs = prepare_adjacency(x_dict, edge_index_dict, self.node_types, self.edge_types)
            for layer in range(self.num_layers):
                x_dict = self.forward_layer(layer, x_dict, csrs)
            if num_sampled_nodes_dict is None:
                return x_dict
            return {t: x[:num_sampled_nodes_dict[t][0]] if t in num_sampled_nodes_dict else x
                    for t, x in x_dict.items()}
        with torch.no_grad():   # no transpose of the whole sample: each layer builds its own
            csrs = prepare_adjacency(x_dict, edge_index_dict, self.node_types, self.edge_types)
        grad = torch.is_grad_enabled()
        rows = {t: x.size(0) for t, x in x_dict.items()}
        for layer in range(self.num_layers):
            n_in, n_out = layer_rows(num_sampled_nodes_dict, self.num_layers, layer, rows)
            # a view only where rows are cut: a slice's backward zero-fills and copies the whole input
            x_in = {t: x if n_in[t] == x.size(0) else x[:n_in[t]] for t, x in x_dict.items()}
            # a conv that takes num_dst_dict computes only the kept rows; others compute all
            # input rows (the extra ones get no edges) and are cut after
            own = getattr(self.convs[layer], "trims_dst", False)
            layer_csrs = {et: trim_csr(c, n_in[et[0]], n_out[et[2]], None if own else n_in[et[2]], transpose=grad)
                          for et, c in csrs.items()}
            x_dict = self.forward_layer(layer, x_in, layer_csrs, num_dst_dict=n_out)
        return x_dict

    def forward_layer(self, layer: int, x_dict: dict[str, Tensor],
                      edge_index_dict: dict[tuple[str, str, str], Tensor | CSR],
                      num_dst_dict: dict[str, int] | None = None) -> dict[str, Tensor]:
        """Layer ``layer`` alone (conv, then norm/act/dropout unless last, then residual), so
        inference can run the stack one layer at a time over chunks of nodes. With
        ``num_dst_dict`` only the first ``num_dst_dict[t]`` rows of each type are computed."""
        conv = self.convs[layer]
        if num_dst_dict is None:
            h_dict = conv(x_dict, edge_index_dict)
        elif getattr(conv, "trims_dst", False):
            h_dict = conv(x_dict, edge_index_dict, num_dst_dict=num_dst_dict)
        else:
            h_dict = {t: h[:num_dst_dict[t]] for t, h in conv(x_dict, edge_index_dict).items()}
        if layer < self.num_layers - 1:
            h_dict = {t: F.dropout(self.act(self.norms[layer][t](h)), self.dropout, self.training)
                      for t, h in h_dict.items()}
        return {t: x_dict[t][:h.size(0)] + h for t, h in h_dict.items()} if self.residual else h_dict

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.channels}, num_layers={self.num_layers}, "
                f"conv={self.conv_name!r}, residual={self.residual}, norm={self.norm!r}, "
                f"dropout={self.dropout})")
