"""k-nearest-neighbour relations by cosine similarity, computed block by block."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# about 64 MB of float32 similarities per block, whatever N is
_BLOCK_ELEMENTS = 1 << 24
METRIC = "cosine"  # the one similarity knn_graph computes

EdgeType = tuple[str, str, str]


def knn_record(edge_type: EdgeType, feature: str, k: int) -> dict:
    """What the builder stores per kNN relation in `graph.mmgraph["knn"]` (plain values)."""
    return {"relation": list(edge_type), "feature": feature, "k": int(k), "metric": METRIC}


def knn_records(meta: dict | None) -> dict[EdgeType, dict]:
    """`graph.mmgraph["knn"]` by edge type; empty for graphs built before it was recorded."""
    return {tuple(r["relation"]): r for r in (meta or {}).get("knn", [])}


def knn_graph(x: Tensor, k: int, *, mask: Tensor | None = None, block_size: int | None = None) -> Tensor:
    r"""Connect every node to its `k` most similar other nodes.

    .. math::
        \mathcal{N}(i) = \operatorname{top-}k_{j \ne i,\, m_j}\;
        \frac{x_i^\top x_j}{\lVert x_i \rVert \, \lVert x_j \rVert}

    Similarities are computed for `block_size` rows at a time (by default as many as fit in
    about 64 MB) and reduced with `torch.topk`, so memory is O(block_size * N), never N x N.
    Nodes whose `mask` is False have no edges either way. With fewer than k + 1 valid nodes
    each gets all the others.

    Shapes:
        x: `[N, d]`; mask: `[N]` bool; returns edge_index `[2, N_valid * k']` (long, on x's
        device) with row 0 the node and row 1 its neighbours, nearest first.

    Example::
        >>> x = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
        >>> knn_graph(x, 1)
        tensor([[0, 1, 2], [1, 0, 1]])
    """
    if x.dim() != 2:
        raise ValueError(f"knn_graph: x must be [N, d], got shape {tuple(x.shape)}")
    if k < 1 or (block_size is not None and block_size < 1):
        raise ValueError(f"knn_graph: k and block_size must be positive, got k={k}, block_size={block_size}")
    valid = torch.arange(x.size(0), device=x.device)
    if mask is not None:
        valid = valid[mask.to(device=x.device, dtype=torch.bool)]
    n = valid.numel()
    k = min(k, n - 1)
    if k < 1:
        return torch.empty(2, 0, dtype=torch.long, device=x.device)
    if block_size is None:
        block_size = max(1, _BLOCK_ELEMENTS // n)
    # float32 at least: half-precision dot products lose the ordering of close neighbours
    normed = F.normalize(x[valid].to(torch.promote_types(x.dtype, torch.float32)), dim=1)
    neighbours = []
    for start in range(0, n, block_size):
        block = normed[start:start + block_size]
        sim = block @ normed.T  # [B, n]
        rows = torch.arange(block.size(0), device=x.device)
        sim[rows, rows + start] = float("-inf")  # never your own neighbour
        neighbours.append(torch.topk(sim, k, dim=1).indices)
    targets = torch.cat(neighbours).reshape(-1)
    sources = torch.arange(n, device=x.device).repeat_interleave(k)
    return torch.stack([valid[sources], valid[targets]])
