"""Input checks and adjacency preparation shared by the heterogeneous conv layers."""
from __future__ import annotations

import torch
from torch import Tensor

from mmgraph.errors import InputError
from mmgraph.nn.aggregate import CSR, to_csr

EdgeType = tuple[str, str, str]
Metadata = tuple[list[str], list[EdgeType]]


def edge_name(edge_type: EdgeType) -> str:
    return "|".join(edge_type)


def check_metadata(metadata: Metadata) -> tuple[list[str], list[EdgeType]]:
    """Validate ``(node_types, edge_types)``; return them as fresh lists of str / 3-tuples."""
    try:
        node_types, edge_types = metadata
    except (TypeError, ValueError) as e:
        raise InputError("metadata must be a pair (node_types, edge_types)") from e
    node_types = [str(t) for t in node_types]
    if len(set(node_types)) != len(node_types):
        raise InputError(f"metadata lists a node type twice: {node_types}")
    checked: list[EdgeType] = []
    for et in edge_types:
        if not (isinstance(et, (tuple, list)) and len(et) == 3):
            raise InputError(f"metadata edge type {et!r} is not a (source, relation, target) triple")
        et = (str(et[0]), str(et[1]), str(et[2]))
        for end in (et[0], et[2]):
            if end not in node_types:
                raise InputError(f"edge type {edge_name(et)}: node type {end!r} is not in metadata")
        if et in checked:
            raise InputError(f"metadata lists edge type {edge_name(et)} twice")
        checked.append(et)
    return node_types, checked


def incoming(node_types: list[str], edge_types: list[EdgeType]) -> dict[str, list[EdgeType]]:
    """``{node type: [edge types ending there]}`` in metadata order (empty list when none)."""
    out: dict[str, list[EdgeType]] = {t: [] for t in node_types}
    for et in edge_types:
        out[et[2]].append(et)
    return out


def prepare_adjacency(x_dict: dict[str, Tensor], edge_index_dict: dict, node_types: list[str],
                      edge_types: list[EdgeType], num_dst: dict[str, int] | None = None) -> dict[EdgeType, CSR]:
    """Check the inputs against the metadata and turn every adjacency into a CSR.

    ``num_dst`` gives the destination rows of a type when fewer than its ``x_dict`` rows (the
    first ones: a trimmed layer, see :mod:`mmgraph.nn.trim`).

    Edge types of the metadata that ``edge_index_dict`` leaves out have no edges in this call.
    A ``[2, E]`` tensor is grouped here (with its transpose when gradients are on); pass a
    precomputed `CSR` to skip that work.
    """
    for t in x_dict:
        if t not in node_types:
            raise InputError(f"x_dict: node type {t!r} is not in the layer's metadata {node_types}")
    known = set(edge_types)
    csrs: dict[EdgeType, CSR] = {}
    for key, adj in edge_index_dict.items():
        et = tuple(key)
        name = f"edge_index_dict[{edge_name(et) if len(et) == 3 else key!r}]"
        if et not in known:
            raise InputError(f"{name}: edge type is not in the layer's metadata; reverse edge types "
                             f"are never added implicitly, list them in metadata")
        for end in (et[0], et[2]):
            if end not in x_dict:
                raise InputError(f"{name}: x_dict has no features for node type {end!r}")
        num_src = x_dict[et[0]].size(0)
        dst_rows = x_dict[et[2]].size(0) if num_dst is None else num_dst.get(et[2], x_dict[et[2]].size(0))
        if isinstance(adj, CSR):
            if adj.num_src != num_src or adj.num_dst != dst_rows:
                raise InputError(f"{name}: CSR is {adj.num_dst}x{adj.num_src} (dst x src) but x_dict "
                                 f"has {dst_rows} {et[2]!r} and {num_src} {et[0]!r} nodes")
            csrs[et] = adj
        else:
            csrs[et] = to_csr(adj, num_src, dst_rows, transpose=torch.is_grad_enabled(), name=name)
    return csrs


def check_channels(x_dict: dict[str, Tensor], in_channels: int, layer: str) -> None:
    for t, x in x_dict.items():
        if x.dim() != 2 or x.size(-1) != in_channels:
            raise InputError(f"{layer}: x_dict[{t!r}] has shape {tuple(x.shape)}, expected "
                             f"[num_nodes, {in_channels}]")
