r"""Neighbour-sampled mini-batch training: one step is a function of a batch of supervision edges.

The engine (`mmgraph.train.trainer.fit`) runs the steps that `SupervisedObjective` plans
(`mmgraph.train.supervised`) from the pieces here. An epoch splits the training edges into message and supervision edges exactly as full-batch
training does (`epoch_edges`, disjoint, redrawn each epoch), builds a neighbour sampler over
that epoch's message edges (reverse types included), shuffles the supervision edges of all
scored relations together and cuts them into batches of `batch_size`. One step
(`minibatch_step_loss`):

1. negatives of the right node type that are never training edges (`filtered_negatives`):
   `num_negatives` corrupted tails per edge, and as many corrupted heads with `loss: 1-n`;
2. seeds = heads, tails and negatives per node type; sample `fanouts[l]` in-neighbours per
   node and edge type for layer l over the epoch's message edges (never a supervision edge);
3. embed the subgraph (`n_id_dict`: learned embeddings by global id), score, and the loss
   plus the weighted KL of the variational head.

Loss per relation r of the batch, weighted by its share of the batch:
`bce` is binary cross-entropy of the positives against their corrupted tails (as full-batch);
`1-n` needs every node's embedding, so here it becomes a sampled softmax: each edge's cross-
entropy against its corrupted tails and, separately, its corrupted heads,

.. math::
    \ell = \tfrac12 \Big(-\log \frac{e^{f(h,r,t)}}{e^{f(h,r,t)} + \sum_{k} e^{f(h,r,\tilde t_k)}}
           -\log \frac{e^{f(h,r,t)}}{e^{f(h,r,t)} + \sum_{k} e^{f(\tilde h_k,r,t)}}\Big)

Everything random draws from the one generator of `fit` (checkpointed with it), so a seeded
run is deterministic on CPU and a resumed one continues the same stream.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from mmgraph.data.true_edges import FilterIndex
from mmgraph.train.batching import resolved_fanouts
from mmgraph.train.layerwise import feature_rows
from mmgraph.train.losses import masked_cross_entropy, negative_sampling_loss
from mmgraph.train.negatives import filtered_negatives
from mmgraph.train.sampler import HeteroNeighborSampler, SampledSubgraph
from mmgraph.utils import gather_rows

EdgeType = tuple[str, str, str]

__all__ = ["TrueKeys", "negative_filters", "epoch_sampler", "supervision_batches", "minibatch_step_loss"]


@dataclass(frozen=True)
class TrueKeys:
    """A relation's training edges as the sorted keys `filtered_negatives` looks up (one
    direction), computed once per epoch instead of once per step."""

    num_dst: int
    keys: Tensor

    def edge_keys(self) -> Tensor:
        return self.keys


def negative_filters(train_filters: dict[EdgeType, FilterIndex]) -> dict[EdgeType, tuple[TrueKeys, TrueKeys]]:
    """Per relation (tail-side keys, head-side keys): corrupt tails of heads, heads of tails."""
    out = {}
    for et, fi in train_filters.items():
        flipped = FilterIndex(fi.num_dst, fi.num_src, fi.head_ptr, fi.head_col, fi.tail_ptr, fi.tail_col)
        out[et] = (TrueKeys(fi.num_dst, fi.edge_keys()), TrueKeys(fi.num_src, flipped.edge_keys()))
    return out


def epoch_sampler(prepared, config, message_idx: dict[EdgeType, Tensor]) -> HeteroNeighborSampler:
    """The sampler over one epoch's message edges (none when the model passes no messages)."""
    if config.model.num_layers == 0:   # seeds only: the subgraph is the batch's own nodes
        return HeteroNeighborSampler({}, prepared.num_nodes, [1])
    return HeteroNeighborSampler(prepared.message_edges(message_idx), prepared.num_nodes,
                                 resolved_fanouts(config))


def supervision_batches(prepared, supervision: dict[EdgeType, Tensor], batch_size: int,
                        generator: torch.Generator) -> list[tuple[Tensor, Tensor]]:
    """The epoch's supervision edges of all relations, shuffled, in batches `(which [B], pairs
    [2, B])`: row i is edge `pairs[:, i]` of relation `prepared.relations[which[i]]`."""
    rels = prepared.relations
    which = torch.cat([torch.full((supervision[et].numel(),), i, dtype=torch.long) for i, et in enumerate(rels)])
    pairs = torch.cat([prepared.edge_index[et][:, supervision[et]] for et in rels], dim=1)
    order = torch.randperm(which.numel(), generator=generator)
    which, pairs = which[order], pairs[:, order]
    steps = max(1, math.ceil(which.numel() / batch_size))
    return list(zip(which.tensor_split(steps), pairs.tensor_split(steps, dim=1)))


class _Seeds:
    """Seed ids collected per node type; `add` returns where its ids sit in that type's list."""

    def __init__(self):
        self.ids: dict[str, list[Tensor]] = {}
        self.count: dict[str, int] = {}

    def add(self, t: str, ids: Tensor) -> tuple[str, int, int]:
        start = self.count.get(t, 0)
        self.ids.setdefault(t, []).append(ids.reshape(-1))
        self.count[t] = start + ids.numel()
        return t, start, start + ids.numel()

    def as_dict(self) -> dict[str, Tensor]:
        return {t: torch.cat(v) for t, v in self.ids.items()}


def minibatch_step_loss(model, prepared, config, sampler: HeteroNeighborSampler, which: Tensor, pairs: Tensor,
                        x: dict, m: dict, filters: dict, generator: torch.Generator, teacher=None
                        ) -> tuple[Tensor, Tensor, SampledSubgraph]:
    """(link loss, KL, the sampled subgraph) of one batch of supervision edges (global ids, CPU).

    `x`, `m` are the whole graph's features on the model's device; `filters` is
    `negative_filters(prepared.train_filters)`. The caller adds the weighted KL and steps.
    `teacher` (a `mmgraph.train.distill.Teacher`) is mixed into each relation's loss over the
    sampled candidates (`Teacher.mix_sampled`; corrupted heads are drawn for it with any loss).
    """
    k, softmax = config.num_negatives, config.loss == "1-n"
    heads_too = softmax or teacher is not None
    seeds, plan = _Seeds(), []
    for i, et in enumerate(prepared.relations):
        pair = pairs[:, which == i]
        if pair.size(1) == 0:
            continue
        tail_keys, head_keys = filters[et]
        neg_tails = filtered_negatives(pair[0], prepared.num_nodes[et[2]], k, true_edges=tail_keys,
                                       generator=generator)
        neg_heads = (filtered_negatives(pair[1], prepared.num_nodes[et[0]], k, true_edges=head_keys,
                                        generator=generator) if heads_too else None)
        plan.append((et, pair, neg_tails, neg_heads, seeds.add(et[0], pair[0]), seeds.add(et[2], pair[1]),
                     seeds.add(et[2], neg_tails), seeds.add(et[0], neg_heads) if heads_too else None))
    sub = sampler.sample(seeds.as_dict(), generator=generator)
    device = next(model.parameters()).device
    n_id = {t: v.to(device) for t, v in sub.n_id.items()}
    x_sub, m_sub = feature_rows(x, m, n_id)
    # per-layer trimming: z holds the seeds' rows only
    z, kl = model.embed(x_sub, m_sub, {et: ei.to(device) for et, ei in sub.edge_index.items()}, n_id_dict=n_id,
                        num_sampled_nodes_dict=sub.num_sampled_nodes)
    local = {t: v.to(device) for t, v in sub.seed_local.items()}

    def rows(where: tuple[str, int, int]) -> Tensor:
        t, start, end = where
        return gather_rows(z[t], local[t][start:end])

    total = pairs.size(1)
    loss = z[next(iter(z))].new_zeros(())
    for et, pair, neg_tail_ids, neg_head_ids, heads, tails, neg_t, neg_h in plan:
        z_h, z_t = rows(heads), rows(tails)
        b = z_h.size(0)
        pos = model.score(et, z_h, z_t)
        tail_scores = model.score(et, z_h.repeat_interleave(k, 0), rows(neg_t)).view(b, k)
        if heads_too:
            head_scores = model.score(et, rows(neg_h), z_t.repeat_interleave(k, 0)).view(b, k)
        if softmax:
            none = torch.zeros(b, k + 1, dtype=torch.bool, device=device)
            target = torch.zeros(b, dtype=torch.long, device=device)
            rel_loss = 0.5 * sum(masked_cross_entropy(torch.cat([pos[:, None], s], 1), target, none,
                                                      config.label_smoothing) for s in (tail_scores, head_scores))
        else:
            rel_loss = negative_sampling_loss(pos, tail_scores)
        if teacher is not None:   # candidates: the true end first, then the corrupted ones
            rel_loss = teacher.mix_sampled(
                rel_loss, et,
                tail=(torch.cat([pos[:, None], tail_scores], 1), pair[0][:, None].expand(b, k + 1),
                      torch.cat([pair[1][:, None], neg_tail_ids], 1)),
                head=(torch.cat([pos[:, None], head_scores], 1), torch.cat([pair[0][:, None], neg_head_ids], 1),
                      pair[1][:, None].expand(b, k + 1)))
        loss = loss + rel_loss * (b / total)
    return loss, kl, sub
