"""A proposed change to mmgraph.train.trainer, measured by monkeypatching: one 1-N loss for all relations.

`trainer._epoch_loss` calls `_link_loss` once per relation per step, so a knowledge graph with 46
relations (UMLS) pays 46 small score / mask / cross-entropy / backward pieces per step, and on CPU
that Python and kernel-launch overhead, not arithmetic, is the epoch. When the model passes no
messages and every scored relation links the same node types (every KG), the relation only
selects a row of the relation table, and the scorers already take one relation vector per row
(`score_tails(h [B, d], r [B, rd], t_all)`): so one call scores the whole batch, and the loss is
the same filtered softmax cross-entropy, each row masked with its own relation's training filter.
Rows are weighted equally across relations (the library averages per relation, then sums).

    import fused_relations; fused_relations.install()   # before train_run
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from mmgraph.train import trainer

_original_epoch_loss = trainer._epoch_loss


def applies(prepared, config) -> bool:
    ends = {(et[0], et[2]) for et in prepared.relations}
    return (config.loss == "1-n" and config.model.num_layers == 0 and len(ends) == 1
            and all(et in prepared.relations for et in prepared.splits))


def smoothed_cross_entropy(logits: Tensor, target: Tensor, masked: Tensor, smoothing: float) -> Tensor:
    """Cross-entropy with label smoothing spread over the candidates left in (`masked` False).

    `F.cross_entropy(label_smoothing=...)` spreads the smoothing over every column, the masked
    (-inf) ones too, so its loss is +inf whenever a row has another known answer.
    """
    logp = logits.masked_fill(masked, float("-inf")).log_softmax(dim=-1)
    nll = -logp.gather(1, target.view(-1, 1)).squeeze(1)
    if smoothing == 0:
        return nll.mean()
    left = (~masked).sum(dim=1).clamp_min(1)
    spread = -logp.masked_fill(masked, 0.0).sum(dim=1) / left
    return ((1 - smoothing) * nll + smoothing * spread).mean()


def train_masks(prepared, relations) -> Tensor | None:
    """Dense `[R, N_src, N_dst]` training-edge masks where they fit (small KGs), else None."""
    n_src, n_dst = prepared.num_nodes[relations[0][0]], prepared.num_nodes[relations[0][2]]
    if len(relations) * n_src * n_dst > 50_000_000:
        return None
    mask = torch.zeros(len(relations), n_src, n_dst, dtype=torch.bool)
    for i, et in enumerate(relations):
        ei = prepared.split_edges_of(et, "train")
        mask[i, ei[0], ei[1]] = True
    return mask


def sparse_mask(prepared, relations, rel: Tensor, queries: Tensor, shape, direction: str) -> Tensor:
    mask = torch.zeros(shape, dtype=torch.bool)
    for i, et in enumerate(relations):
        where = (rel == i).nonzero().view(-1)
        if where.numel():
            rows, cols = prepared.train_filters[et].entries(queries[where], direction=direction)
            mask[where[rows], cols] = True
    return mask


def fused_epoch_loss(model, optimizer, prepared, config, x, m, device, generator, kl_weight):
    if not applies(prepared, config):
        return _original_epoch_loss(model, optimizer, prepared, config, x, m, device, generator, kl_weight)
    relations = list(prepared.relations)
    rel_ids = torch.cat([torch.full((prepared.splits[et].train.numel(),), i) for i, et in enumerate(relations)])
    pairs = torch.cat([prepared.split_edges_of(et, "train") for et in relations], dim=1)
    order = torch.randperm(rel_ids.numel(), generator=generator)
    table_rows = torch.tensor([model._relation_index[et] for et in relations])
    steps = max(1, -(-order.numel() // config.batch_size))
    dense = train_masks(prepared, relations)
    total, total_kl = 0.0, 0.0
    for batch in order.tensor_split(steps):
        model.train()
        z, kl = model.embed(x, m, {})
        z_all = next(iter(z.values()))
        rel, heads, tails = rel_ids[batch], pairs[0, batch], pairs[1, batch]
        r = model.relation_vectors[table_rows[rel]] if model.relation_vectors is not None else None
        tail_logits = model.scorer.score_tails(z_all[heads], r, z_all)
        head_logits = model.scorer.score_heads(z_all, r, z_all[tails])
        if dense is not None:
            tail_mask, head_mask = dense[rel, heads], dense[rel, :, tails]
        else:
            tail_mask = sparse_mask(prepared, relations, rel, heads, tail_logits.shape, "tail")
            head_mask = sparse_mask(prepared, relations, rel, tails, head_logits.shape, "head")
        rows = torch.arange(rel.numel())
        tail_mask[rows, tails] = False  # a row's own answer always competes
        head_mask[rows, heads] = False
        eps = config.label_smoothing
        loss = kl_weight * kl + 0.5 * (smoothed_cross_entropy(tail_logits, tails, tail_mask, eps)
                                       + smoothed_cross_entropy(head_logits, heads, head_mask, eps))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        total += float(loss.detach())
        total_kl += float(kl.detach())
    return total / steps, total_kl / steps


def install() -> None:
    trainer._epoch_loss = fused_epoch_loss
