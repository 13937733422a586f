"""Edge splits: a given split column, a seeded random split, an inductive (cold-start) split.

Every function is pure: index tensors and a `torch.Generator` in, index tensors out. A split is
a triple of *edge positions* (columns of the relation's `edge_index`), so features, split
columns and edge attributes stay addressable by the same positions everywhere.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from mmgraph.errors import InputError

__all__ = ["EdgeSplit", "split_edges", "inductive_split", "edge_keys", "contains_edges",
           "reverse_duplicates"]


class EdgeSplit(NamedTuple):
    """Positions of the train / valid / test edges of one relation (sorted LongTensors)."""

    train: Tensor
    valid: Tensor
    test: Tensor


def _check_ratios(ratios) -> tuple[float, float, float]:
    if len(ratios) != 3 or any(r < 0 for r in ratios) or not math.isclose(sum(ratios), 1.0, abs_tol=1e-6):
        raise InputError(f"split ratios must be three non-negative numbers summing to 1, got {tuple(ratios)}")
    return tuple(float(r) for r in ratios)


def split_edges(num_edges: int, *, split: Tensor | None = None,
                ratios: tuple[float, float, float] = (0.85, 0.05, 0.10),
                generator: torch.Generator | None = None) -> EdgeSplit:
    """Split `num_edges` edge positions into train / valid / test.

    With `split` (a `[num_edges]` tensor of 0 train, 1 valid, 2 test, e.g. the graph's own split
    column) the split is read from it; otherwise a random permutation drawn from `generator` is
    cut at `round(ratio * num_edges)` (valid and test rounded, train takes the rest).

    Example::

        s = split_edges(100, generator=torch.Generator().manual_seed(0))
        len(s.train), len(s.valid), len(s.test)   # (85, 5, 10)
    """
    if num_edges < 0:
        raise InputError(f"split_edges: num_edges must be >= 0, got {num_edges}")
    if split is not None:
        split = torch.as_tensor(split).reshape(-1).long()
        if split.numel() != num_edges:
            raise InputError(f"split column has {split.numel()} values for {num_edges} edges")
        bad = ((split < 0) | (split > 2)).nonzero().view(-1)
        if bad.numel():
            row = int(bad[0])
            raise InputError(f"split column: row {row + 1} has value {int(split[row])}; "
                             "expected 0 (train), 1 (valid) or 2 (test)")
        return EdgeSplit(*((split == k).nonzero().view(-1) for k in range(3)))
    _, r_valid, r_test = _check_ratios(ratios)
    perm = torch.randperm(num_edges, generator=generator)
    n_valid = int(round(r_valid * num_edges))
    n_test = min(int(round(r_test * num_edges)), num_edges - n_valid)
    n_train = num_edges - n_valid - n_test
    train, valid, test = perm.split([n_train, n_valid, n_test])
    return EdgeSplit(train.sort().values, valid.sort().values, test.sort().values)


def inductive_split(edge_index: Tensor, num_src_nodes: int, *, held_out_fraction: float,
                    valid_share: float = 0.5, same_type: bool = False,
                    generator: torch.Generator | None = None) -> tuple[Tensor, EdgeSplit]:
    """Hold out whole source nodes (cold start): none of their edges is a training edge.

    A fraction `held_out_fraction` of the source nodes that have edges is drawn; `valid_share`
    of them become validation nodes, the rest test nodes. An edge goes to the split of the
    held-out node it touches (test wins over valid), else to train. With `same_type=True`
    (source and target are the same node type) the target side counts too, so a held-out
    node appears in no training edge at either end. Held-out nodes must also be kept out of
    the training edges of *other* relations by the caller (`contains_edges` helps).

    Returns `(held_out_nodes, EdgeSplit)`, held-out nodes sorted.

    Example::

        nodes, s = inductive_split(ei, 50, held_out_fraction=0.1, generator=g)
        assert not torch.isin(ei[0, s.train], nodes).any()
    """
    if not 0.0 <= held_out_fraction <= 1.0 or not 0.0 <= valid_share <= 1.0:
        raise InputError(f"inductive_split: held_out_fraction ({held_out_fraction}) and "
                         f"valid_share ({valid_share}) must lie in [0, 1]")
    edge_index = edge_index.long()
    if edge_index.numel() and int(edge_index[0].max()) >= num_src_nodes:
        raise InputError(f"inductive_split: source id {int(edge_index[0].max())} >= num_src_nodes "
                         f"({num_src_nodes})")
    candidates = edge_index[0].unique()
    n_held = int(round(held_out_fraction * candidates.numel()))
    held = candidates[torch.randperm(candidates.numel(), generator=generator)[:n_held]]
    n_valid_nodes = int(round(valid_share * n_held))
    # part of each node: 0 known, 1 valid, 2 test; an edge takes the larger part of its ends
    num_part = num_src_nodes
    if same_type and edge_index.numel():
        num_part = max(num_src_nodes, int(edge_index[1].max()) + 1)
    part = torch.zeros(num_part, dtype=torch.long)
    part[held[:n_valid_nodes]] = 1
    part[held[n_valid_nodes:]] = 2
    edge_part = part[edge_index[0]]
    if same_type:
        edge_part = torch.maximum(edge_part, part[edge_index[1]])
    split = EdgeSplit(*((edge_part == k).nonzero().view(-1) for k in range(3)))
    return held.sort().values, split


def edge_keys(edge_index: Tensor, num_dst: int) -> Tensor:
    """One int64 key per edge, `src * num_dst + dst`: equal keys iff equal (src, dst) pairs."""
    return edge_index[0].long() * num_dst + edge_index[1].long()


def contains_edges(edges: Tensor, reference: Tensor, num_dst: int) -> Tensor:
    """BoolTensor `[E]`: True where the edge `edges[:, i]` also occurs among `reference` `[2, R]`.

    Vectorised: sorted int64 keys and a binary search, O((E + R) log R).
    """
    ref = edge_keys(reference, num_dst).unique()  # sorted
    keys = edge_keys(edges, num_dst)
    if ref.numel() == 0:
        return torch.zeros(keys.numel(), dtype=torch.bool, device=keys.device)
    pos = torch.searchsorted(ref, keys).clamp_(max=ref.numel() - 1)
    return ref[pos] == keys


def reverse_duplicates(eval_edges: Tensor, train_edges: Tensor, *, num_nodes: int) -> Tensor:
    """BoolTensor `[E_eval]`: True where the reverse `(b, a)` of an evaluation edge `(a, b)` is a
    training edge, i.e. the answer leaks through an inverse pair.

    For relations whose source and target are the same node type (`num_nodes` of it). Pass the
    same relation's train edges (symmetric relations) or those of an inverse relation (e.g.
    hypernym / hyponym) to report leakage; nothing is removed.

    Example::

        leak = reverse_duplicates(ei[:, s.test], ei[:, s.train], num_nodes=n)
        print(f"{int(leak.sum())} test edges have their reverse in train")
    """
    return contains_edges(eval_edges.flip(0), train_edges, num_nodes)
