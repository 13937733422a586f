"""The pretraining objective of the engine: edge reconstruction, masked features, InfoNCE; full or mini-batch.

One epoch hides a share (`held_out_edges`) of each edge type's training edges from message
passing and a share (`mask_rate`) of the present features at the input. A step then embeds the
graph (variational head sampled) and sums, with the config's weights,

(a) the reconstruction of the hidden edges against sampled non-edges with an inner product
    (VGAE; the relation name is ignored, so every edge type is "linked" vs "not linked"), plus
    the weighted KL term;
(b) the reconstruction of the hidden features from their node's embedding (scaled cosine error);
(c) InfoNCE between the projected modality tokens of the same node, and of the two ends of an
    edge, so every modality lands in one space.

- full batch: one step per epoch over the whole graph (every hidden edge, every hidden feature,
  `contrastive_batch` pairs per term drawn from all nodes and training edges).
- mini batch: the hidden edges of all types, shuffled, in batches of `batch_size`; each step's
  seeds are the batch's two ends and one sampled non-edge end per negative, and their sampled
  neighbourhood over the epoch's message edges (`HeteroNeighborSampler`). The three terms are
  computed on that subgraph: the batch's hidden edges against their non-edges, the hidden
  features of the seeds, and InfoNCE pairs among the seeds (the same node, or the batch's edges).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from mmgraph.data.true_edges import FilterIndex
from mmgraph.errors import InputError
from mmgraph.nn.variational import KLSchedule
from mmgraph.train import minibatch
from mmgraph.train.layerwise import feature_rows
from mmgraph.train.message_passing import disjoint_supervision
from mmgraph.train.negatives import filtered_negatives
from mmgraph.train.objective_base import Objective, Trained
from mmgraph.train.objectives import edge_reconstruction_loss, feature_masks, info_nce, masked_feature_loss
from mmgraph.train.prepare import PreparedGraph
from mmgraph.utils import gather_rows

EdgeType = tuple[str, str, str]

__all__ = ["FeatureDecoders", "PretrainObjective", "contrastive_pairs"]


class FeatureDecoders(nn.Module):
    r"""One linear decoder per (node type, feature) from the embedding back to the feature:
    :math:`\hat x_{v,f} = W_{t,f} z_v + b_{t,f}`. Used in pretraining only (not saved).

    Shapes: ``forward(t, f, z [N_t, channels]) -> [N_t, dim_f]``.

    Example::

        dec = FeatureDecoders({"clip": {"sound": 234}}, 64)
        dec("clip", "sound", torch.randn(5, 64)).shape   # (5, 234)
    """

    def __init__(self, feature_dims: dict[str, dict[str, int]], channels: int):
        super().__init__()
        self._index = {}
        self.lins = nn.ModuleList()
        for t, feats in feature_dims.items():
            for f, dim in feats.items():
                self._index[(t, f)] = len(self.lins)
                self.lins.append(nn.Linear(channels, dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in self.lins:
            lin.reset_parameters()

    def forward(self, t: str, f: str, z: Tensor) -> Tensor:
        return self.lins[self._index[(t, f)]](z)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(features={len(self.lins)})"


def contrastive_pairs(prepared: PreparedGraph) -> list[tuple[str, str, str, str, EdgeType | None]]:
    """Which modality tokens to align: (type a, feature a, type b, feature b, edge type or None).

    Two features of one node type (edge None: the same node), and a feature at each end of
    every stored edge type, whatever its relation (not the same feature of the same type:
    that pair is not cross-modal).
    """
    pairs = []
    for t, feats in prepared.x_dict.items():
        names = list(feats)
        pairs += [(t, a, t, b, None) for i, a in enumerate(names) for b in names[i + 1:]]
    for et in prepared.edge_index:
        for fa in prepared.x_dict.get(et[0], {}):
            pairs += [(et[0], fa, et[2], fb, et) for fb in prepared.x_dict.get(et[2], {})
                      if (et[0], fa) != (et[2], fb)]
    return pairs


def _sample(n: int, size: int, generator: torch.Generator) -> Tensor:
    return torch.randperm(n, generator=generator)[:size]


class PretrainObjective(Objective):
    """Self-supervised pretraining (no relation label); no validation, so the run trains all epochs.

    `reconstructed` are the edge types whose hidden edges are reconstructed (those with
    non-edges, `mmgraph.train.pretrain.has_non_edges`). Terms: loss, edge, kl, feature, contrastive.
    """

    validates = False
    name, activity = "pretrain", "pretraining"

    def __init__(self, prepared: PreparedGraph, config, reconstructed: list[EdgeType], feature_dims, channels: int):
        self.prepared, self.config = prepared, config
        self.filters = {et: FilterIndex.from_edges(prepared.edge_index[et][:, prepared.splits[et].train],
                                                   prepared.num_nodes[et[0]], prepared.num_nodes[et[2]])
                        for et in reconstructed}
        self.pairs = contrastive_pairs(prepared)
        self.schedule = KLSchedule(config.model.kl_weight, warmup_epochs=config.model.kl_warmup_epochs)
        self.kl_weight = 0.0
        self._feature_dims, self._channels, self._decoders = feature_dims, channels, None

    def modules(self) -> list[nn.Module]:
        if self._decoders is None:   # built when the engine asks, after it seeds the run
            self._decoders = FeatureDecoders(self._feature_dims, self._channels)
        return [self._decoders]

    def check(self, mode: str) -> None:
        super().check(mode)
        if mode == "mini" and not self.filters:
            raise InputError("pretrain config: mini-batch pretraining draws its seeds from the edges it "
                             "reconstructs, and this graph has none (no edge type has non-edges); "
                             "set `batching: full`")

    def start(self, x, m, device) -> None:
        self.x, self.m, self.device = x, m, device

    def log_line(self, row: dict) -> str:
        return "  ".join(f"{k} {row[k]:.4f}" for k in ("loss", "edge", "feature", "contrastive"))

    # -- the epoch: hidden edges and features, the same in both modes -------------------------
    def epoch_steps(self, mode, epoch, generator, ctx) -> list:
        self.kl_weight = self.schedule(epoch)
        prepared, config = self.prepared, self.config
        message_idx, hidden_edges = {}, {}
        for et, split in prepared.splits.items():
            message_idx[et], hidden_edges[et] = disjoint_supervision(
                split.train, supervision_ratio=config.held_out_edges, generator=generator)
        hidden = {t: {f: feature_masks(self.m[t][f], config.mask_rate, generator=generator) for f in feats}
                  for t, feats in self.m.items()}
        m_in = {t: {f: self.m[t][f] & ~hidden[t][f] for f in feats} for t, feats in self.m.items()}
        if mode == "full":
            edges = {et: ei.to(self.device) for et, ei in prepared.message_edges(message_idx).items()}
            return [("full", edges, hidden, m_in, hidden_edges)]
        sampler = minibatch.epoch_sampler(prepared, config, message_idx)
        rels = [et for et in prepared.splits if et in self.filters]
        which = torch.cat([torch.full((hidden_edges[et].numel(),), i, dtype=torch.long) for i, et in enumerate(rels)])
        pairs = torch.cat([prepared.edge_index[et][:, hidden_edges[et]] for et in rels], dim=1)
        order = torch.randperm(which.numel(), generator=generator)
        steps = max(1, -(-which.numel() // config.batch_size))
        out = []
        for w, p in zip(which[order].tensor_split(steps), pairs[:, order].tensor_split(steps, dim=1)):
            weight = 1.0
            if w.numel() >= ctx.world_size:   # this rank's share of the batch's edges
                weight, w, p = ctx.share_weight(w.numel()), ctx.shard(w), ctx.shard(p, dim=1)
            out.append(("mini", sampler, hidden, m_in, rels, w, p, weight))
        return out

    def step_loss(self, trained: Trained, batch, generator) -> tuple[Tensor, dict[str, Tensor]]:
        step = self._full_step if batch[0] == "full" else self._mini_step
        edge, kl, feature, contrastive, weight = step(trained.model, trained.extras[0], batch, generator)
        c = self.config
        loss = weight * (c.edge_weight * edge + self.kl_weight * kl + c.feature_weight * feature
                         + c.contrastive_weight * contrastive)
        return loss, {"loss": loss, "edge": edge, "kl": kl, "feature": feature, "contrastive": contrastive}

    # -- full batch ---------------------------------------------------------------------------
    def _full_step(self, model, decoders, batch, generator):
        _, edges, hidden, m_in, hidden_edges = batch
        prepared, config, x, device = self.prepared, self.config, self.x, self.device
        z, kl = model.embed(x, m_in, edges)
        edge_terms = []
        for et, sup in hidden_edges.items():
            if not sup.numel() or et not in self.filters:
                continue
            pos = prepared.edge_index[et][:, sup]
            k = config.num_negatives
            neg_dst = filtered_negatives(pos[0], prepared.num_nodes[et[2]], k, true_edges=self.filters[et],
                                         generator=generator)
            neg = torch.stack([pos[0].repeat_interleave(k), neg_dst.reshape(-1)])
            edge_terms.append(edge_reconstruction_loss(z[et[0]], z[et[2]], pos.to(device), neg.to(device)))
        edge = torch.stack(edge_terms).mean() if edge_terms else kl * 0.0
        feature = self._feature_term(decoders, z, x, hidden, kl)
        contrastive = kl * 0.0
        if config.contrastive_weight > 0:
            tokens, present = model.projection(x, self.m)
            contrastive = self._contrastive(model, tokens, present, self._full_rows, generator, kl)
        return edge, kl, feature, contrastive, 1.0

    def _full_rows(self, present, ta, ia, tb, ib, et, generator):
        if et is None:
            rows = (present[ta][:, ia] & present[tb][:, ib]).nonzero().view(-1)
            rows = rows[_sample(rows.numel(), self.config.contrastive_batch, generator).to(rows.device)]
            return rows, rows
        ei = self.prepared.edge_index[et][:, self.prepared.splits[et].train].to(present[ta].device)
        ei = ei[:, present[ta][ei[0], ia] & present[tb][ei[1], ib]]
        ei = ei[:, _sample(ei.size(1), self.config.contrastive_batch, generator).to(ei.device)]
        return ei[0], ei[1]

    # -- shared terms -------------------------------------------------------------------------
    def _feature_term(self, decoders, z, x, targets: dict, kl) -> Tensor:
        """Masked-feature loss over `targets` ({type: {feature: bool rows}}), averaged over features."""
        terms = [masked_feature_loss(decoders(t, f, z[t]), x[t][f], rows)
                 for t, feats in targets.items() for f, rows in feats.items() if bool(rows.any())]
        return torch.stack(terms).mean() if terms else kl * 0.0

    def _contrastive(self, model, tokens, present, rows_of, generator, kl) -> Tensor:
        slots = model.projection.slot_names
        total, terms = 0.0, 0
        for ta, fa, tb, fb, et in self.pairs:
            ia, ib = slots[ta].index(fa), slots[tb].index(fb)
            src, dst = rows_of(present, ta, ia, tb, ib, et, generator)
            if src is None or src.numel() < 2:
                continue
            ids = (src, dst) if et is not None else (None, None)
            total = total + info_nce(gather_rows(tokens[ta][:, ia], src), gather_rows(tokens[tb][:, ib], dst),
                                     temperature=self.config.temperature,
                                     a_ids=ids[0], b_ids=ids[1])
            terms += 1
        return total / terms if terms else kl * 0.0

    # -- mini batch ---------------------------------------------------------------------------
    def _mini_step(self, model, decoders, batch, generator):
        _, sampler, hidden, m_in, rels, which, pairs, weight = batch
        prepared, k, device = self.prepared, self.config.num_negatives, self.device
        seeds, plan = minibatch._Seeds(), []
        for i, et in enumerate(rels):
            pos = pairs[:, which == i]
            if pos.size(1) == 0:
                continue
            neg = filtered_negatives(pos[0], prepared.num_nodes[et[2]], k, true_edges=self.filters[et],
                                     generator=generator)
            plan.append((et, seeds.add(et[0], pos[0]), seeds.add(et[2], pos[1]), seeds.add(et[2], neg)))
        sub = sampler.sample(seeds.as_dict(), generator=generator)
        n_id = {t: v.to(device) for t, v in sub.n_id.items()}
        local = {t: v.to(device) for t, v in sub.seed_local.items()}
        x_sub, m_sub = feature_rows(self.x, m_in, n_id)
        z, kl = model.embed(x_sub, m_sub, {et: ei.to(device) for et, ei in sub.edge_index.items()}, n_id_dict=n_id)

        def at(where):
            t, start, end = where
            return local[t][start:end]

        edge_terms, batch_edges = [], {}
        for et, heads, tails, negs in plan:
            h, t = at(heads), at(tails)
            batch_edges[et] = (h, t)
            neg = torch.stack([h.repeat_interleave(k), at(negs)])
            edge_terms.append(edge_reconstruction_loss(z[et[0]], z[et[2]], torch.stack([h, t]), neg))
        edge = torch.stack(edge_terms).mean() if edge_terms else kl * 0.0
        # the seeds' hidden features (a seed is a node of the batch: an end or a non-edge end)
        is_seed = {t: torch.zeros(n_id[t].numel(), dtype=torch.bool, device=device).index_fill_(0, v, True)
                   for t, v in local.items()}
        targets = {t: {f: h[n_id[t]] & is_seed[t] for f, h in feats.items()}
                   for t, feats in hidden.items() if t in is_seed}
        feature = self._feature_term(decoders, z, x_sub, targets, kl)
        contrastive = kl * 0.0
        if self.config.contrastive_weight > 0:
            x_all, m_all = feature_rows(self.x, self.m, n_id)   # tokens of every present feature
            tokens, present = model.projection(x_all, m_all)

            def rows_of(present, ta, ia, tb, ib, et, generator):
                if et is None:
                    if ta not in is_seed:
                        return None, None
                    rows = (is_seed[ta] & present[ta][:, ia] & present[tb][:, ib]).nonzero().view(-1)
                    rows = rows[_sample(rows.numel(), self.config.contrastive_batch, generator).to(rows.device)]
                    return rows, rows
                if et not in batch_edges:
                    return None, None
                h, t = batch_edges[et]
                keep = present[ta][h, ia] & present[tb][t, ib]
                h, t = h[keep], t[keep]
                chosen = _sample(h.numel(), self.config.contrastive_batch, generator).to(h.device)
                return h[chosen], t[chosen]

            contrastive = self._contrastive(model, tokens, present, rows_of, generator, kl)
        return edge, kl, feature, contrastive, weight
