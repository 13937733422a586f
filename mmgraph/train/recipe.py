"""The no-config recipe: training settings chosen from the graph's statistics.

`mmgraph train GRAPH_DIR -o RUN_DIR` with no `--config` must be strong on graphs nobody tuned it
for, so the settings follow what kind of graph it is (never its name or its exact size):

- **knowledge graph**: most nodes carry no feature and several relations link one or two node
  types. Learned embeddings, no message passing, reciprocal ComplEx with N3 and the filtered
  1-N loss, Adagrad (Lacroix et al. 2018, the strongest simple recipe on UMLS, Kinship, WN18RR
  and FB15k-237); the rank shrinks as the 1-N cost (training edges x entities) grows, so an epoch
  stays affordable, and grows where the device multiplies bf16 natively (large graphs then train
  with `precision: auto`). Entity features do not enter the learned embeddings: fused there,
  frozen text features lowered validation MRR on both knowledge graphs measured with them (UMLS
  names .940 against .944 over 3 seeds; WN18RR glosses .18 against .26 after two epochs, three
  ways of joining them tried; README, "What `train` chooses"). They feed a per-relation
  similarity term beside the structure score instead (`model.feature_similarity`), its weights
  fitted on the validation split after training (`mmgraph.train.score_terms`).
  The embeddings start at std 0.1 (valid MRR: UMLS .946 against .942 at 1 and .85 at 1e-3;
  WN18RR after two epochs .259 against .128 and .192; README, "What `train` chooses").
  A per-relation prior on the log training degrees of a relation's two ends sits beside the
  score too (`model.degree_prior`), weighted on validation after training: N3 keeps the
  embeddings from stating how much likelier a well-linked node is to gain one more link.
- **featured homogeneous graph**: one node type with rich features and one relation (citation
  and co-purchase graphs). A GCN encoder over the features with a variational head and a dot
  product (VGAE, Kipf & Welling 2016), every training edge reconstructed, early stopping on
  validation AUC (the metric of that literature). The features' cosine also sits beside the
  score (`model.feature_similarity`), weighted on validation AUC after training.
- **media graph**: several node types carrying image, audio, text or numbers. The fused
  heterogeneous GNN (two SAGE layers) with the variational head and DistMult on norm-bounded
  embeddings, which keeps scores bounded whatever the features' scale.

Which relations are scored also follows the graph: when the manifest gives a split on some
relations, those are scored and the others only carry messages; otherwise every relation is
scored except the kNN relations the builder derived from features. Everything the rule chose
is returned with a reason, logged, and written to RUN_DIR/config.yaml; any key the user gives
(`--config`, `--relations`, `--epochs`, ...) wins over the recipe's.

    config, reasons = resolve_config(graph, {"epochs": 50})
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch_geometric.data import HeteroData

from mmgraph.data.graph import edge_key
from mmgraph.train.config import TrainConfig
from mmgraph.train.optim import fast_bf16
from mmgraph.train.prepare import feature_derived_edge_types

__all__ = ["GraphProfile", "profile_graph", "recipe_for", "resolve_config", "merge_settings", "log_reasons"]

EdgeType = tuple[str, str, str]

# The KG recipe's rank: the largest of these whose 1-N products fit an epoch's FLOP budget. An
# epoch's products take 12 x cost x rank FLOP (cost: training edges x candidate entities, both
# directions; complex embeddings of 2 x rank reals, forward and backward). The budget is about
# three minutes at this CPU's float32 GEMM rate (64 GFLOP/s), four times that where the products
# run in bf16 (374 GFLOP/s here). WN18RR (cost 7.7e9): rank 100 in float32; in bf16 rank 500, which
# reached validation MRR .462 in its 40 minutes (10 epochs), against .457 for rank 200 after 10
# epochs and .446 for rank 100 after 22 (2026-12-04, seed 0; README, "Link-prediction quality").
_KG_RANKS = (1000, 500, 200, 100)
_EPOCH_FLOP = 1.2e13
# The degree prior's buffer (nodes x 2 x relations floats) stays under 256 MB.
_PRIOR_CELLS = 64_000_000
_BF16_GAIN = 4.0
# Above this cost the 1-N products dominate a step, so they run in bf16 where the hardware
# multiplies it natively (`precision: auto`); below it steps are short either way.
_BF16_COST = 2e7


# The media-graph recipe, also the demo's settings (`mmgraph.train.presets.DEMO_TRAIN`, where the
# choice of supervision_ratio on the demo's validation split is given).
MEDIA_SETTINGS: dict[str, Any] = {
    "epochs": 200, "eval_every": 5, "patience": 15, "lr": 0.003, "supervision_ratio": 0.7,
    "model": {"channels": 64, "num_layers": 2, "conv": "sage", "scorer": "distmult",
              "embedding_norm": 3.0, "dropout": 0.2, "kl_weight": 0.003}}

@dataclass(frozen=True)
class GraphProfile:
    """What the recipe looks at: counts, which types carry which modalities, which relations score."""

    num_nodes: dict[str, int]
    modalities: dict[str, tuple[str, ...]]     # node type -> modalities of its features
    scored: tuple[EdgeType, ...]
    scored_why: str
    num_edges: dict[EdgeType, int]
    featured_share: float                      # share of nodes whose type has a feature

    @property
    def total_nodes(self) -> int:
        return sum(self.num_nodes.values())

    @property
    def train_edges(self) -> int:
        return sum(self.num_edges[et] for et in self.scored)

    @property
    def kind(self) -> str:
        """"knowledge graph" | "featured homogeneous graph" | "media graph"."""
        ends = {t for et in self.scored for t in (et[0], et[2])}
        if self.featured_share < 0.5 and len(ends) <= 2:
            return "knowledge graph"
        if len(self.scored) >= 3 and len(ends) <= 2 and len({et[1] for et in self.scored}) >= 3:
            return "knowledge graph"   # many relations over one entity type, e.g. with gloss text
        if len(self.num_nodes) == 1 and len(self.scored) == 1 and self.featured_share >= 0.5:
            return "featured homogeneous graph"
        return "media graph"

    def one_n_cost(self) -> float:
        """Training edges x candidates of their target and source types, summed over scored relations."""
        return float(sum(self.num_edges[et] * (self.num_nodes[et[0]] + self.num_nodes[et[2]])
                         for et in self.scored))


def profile_graph(graph: HeteroData, relations: tuple[str, ...] | list[str] = ()) -> GraphProfile:
    """The statistics the recipe reads; `relations` (names or keys) overrides the scored set."""
    from mmgraph.train.prepare import resolve_relations

    meta = getattr(graph, "mmgraph", None) or {}
    features = meta.get("features", {}) or {}
    num_nodes = {t: int(graph[t].num_nodes) for t in graph.node_types}
    modalities = {t: tuple(sorted({f.get("modality", "vector") for f in features.get(t, {}).values()}))
                  for t in graph.node_types}
    stored = [et for et in graph.edge_types if graph[et].num_edges > 0]
    derived = feature_derived_edge_types(graph)
    if relations:
        scored, why = resolve_relations(graph, relations), "the relations asked for"
    else:
        with_split = [et for et in stored if getattr(graph[et], "split", None) is not None and et not in derived]
        if with_split and len(with_split) < len([et for et in stored if et not in derived]):
            scored = with_split
            why = "the relations the manifest gives a split for; the others only carry messages"
        else:
            scored = [et for et in stored if et not in derived] or stored
            why = "every relation" + (" (kNN relations derived from features only carry messages)" if derived else "")
    num_edges = {et: int(graph[et].num_edges) for et in stored}
    total = max(1, sum(num_nodes.values()))
    featured = sum(n for t, n in num_nodes.items() if modalities[t]) / total
    return GraphProfile(num_nodes=num_nodes, modalities=modalities, scored=tuple(scored), scored_why=why,
                        num_edges=num_edges, featured_share=featured)


def _epoch_flop(cost: float, rank: int) -> float:
    return 12 * cost * rank


def _kg_rank(cost: float, fast_products: bool) -> tuple[int, float]:
    """(rank, the epoch's FLOP budget it fits)."""
    budget = _EPOCH_FLOP * (_BF16_GAIN if fast_products else 1.0)
    return next((rank for rank in _KG_RANKS if _epoch_flop(cost, rank) <= budget), _KG_RANKS[-1]), budget


def recipe_for(profile: GraphProfile, *, fast_products: bool = False) -> tuple[dict[str, Any], list[str]]:
    """(settings as a TrainConfig mapping, the reasons) for a graph of this profile.

    `fast_products`: the device multiplies bf16 natively and the run may use it (a knowledge
    graph's rank then fits a larger FLOP budget)."""
    kind, reasons = profile.kind, []
    relations = [edge_key(et) for et in profile.scored]
    reasons.append(f"graph: {profile.total_nodes:,} nodes of {len(profile.num_nodes)} type(s), "
                   f"{profile.train_edges:,} edges in {len(profile.scored)} scored relation(s); "
                   f"{profile.featured_share:.0%} of nodes carry features -> a {kind}")
    reasons.append(f"scored relations: {profile.scored_why}")
    settings: dict[str, Any] = {"relations": relations}
    small = profile.total_nodes <= 10_000 and profile.train_edges <= 50_000
    settings["max_minutes"] = 10.0 if small else 40.0
    reasons.append(f"time limit {settings['max_minutes']:.0f} min ({'a small' if small else 'a large'} graph: "
                   f"over 10k nodes or 50k scored edges gets 40 min); early stopping usually ends sooner")
    if kind == "knowledge graph":
        cost = profile.one_n_cost()
        rank, budget = _kg_rank(cost, fast_products)
        featured = any(profile.modalities.values())
        # Sparse graphs overfit first: N3 grows as training edges per entity fall (0.01 on dense
        # graphs such as UMLS and Kinship, up to 0.1 on WordNet-like ones, as Lacroix et al. use there).
        entities = sum(profile.num_nodes[t] for t in {t for et in profile.scored for t in (et[0], et[2])})
        density = profile.train_edges / max(1, entities)
        n3 = round(min(0.1, max(0.01, 0.4 / max(density, 1e-9))), 4)
        # at least ~10 steps an epoch: a small graph gets small batches
        batch = 2 ** max(4, min(8, int(math.log2(max(1, profile.train_edges // 10)))))
        # the prior's buffer holds 2 columns per relation for every node: skipped where that is large
        prior_cells = profile.total_nodes * 2 * len(profile.scored)
        prior = prior_cells <= _PRIOR_CELLS
        large = cost > _BF16_COST
        if large:
            settings["precision"] = "auto"
        settings.update({
            "epochs": 200, "eval_every": 2, "patience": 5, "loss": "1-n", "optimizer": "adagrad", "lr": 0.1,
            "batch_size": batch, "n3_weight": n3, "supervision_ratio": 1.0, "use_features": featured,
            "model": {"channels": 2 * rank, "num_layers": 0, "fusion": "mean", "variational": False,
                      "linear_head": False, "scorer": "complex", "reciprocal": True, "dropout": 0.0, "feature_dropout": 0.0,
                      "learned_embeddings": "all" if featured else "featureless", "embedding_init_std": 0.1,
                      "feature_input": False, "feature_similarity": featured, "degree_prior": prior}})
        reasons.append(f"knowledge graph: learned embeddings, reciprocal ComplEx-N3 (rank {rank}: an epoch's 1-N "
                       f"products {_epoch_flop(cost, rank):.2g} FLOP within the budget of {budget:.2g}"
                       f"{' for bf16 products' if fast_products else ''}), N3 weight {n3} ({density:.1f} edges per entity), "
                       f"Adagrad lr 0.1, filtered 1-N loss, embeddings starting small (std 0.1)"
                       + ("; products in bf16 where the hardware has it (precision auto: a large 1-N cost)"
                          if large else "")
                       + ("; entity features feed a similarity term per relation, weighted on the validation "
                          "split after training (fused into the embeddings they lowered validation MRR)"
                          if featured else "")
                       + ("; a per-relation log-degree prior beside the score, weighted on the validation split "
                          "after training" if prior else
                          f"; no degree prior ({prior_cells:,} cells of log-degrees would pass {_PRIOR_CELLS:,})"))
    elif kind == "featured homogeneous graph":
        settings.update({
            "epochs": 300, "eval_every": 5, "patience": 10, "lr": 0.01, "loss": "1-n", "batch_size": 8192,
            "supervision_ratio": 1.0, "early_stop_metric": "auc",
            "model": {"channels": 64, "num_layers": 1, "conv": "gcn", "fusion": "mean", "variational": True,
                      "kl_weight": 0.001, "scorer": "dot", "dropout": 0.0, "feature_dropout": 0.0,
                      "learned_embeddings": "none", "feature_similarity": True}})
        # One GCN hop, not VGAE's two: Cora's validation AUC over 5 paired seeds was 93.7 against
        # 92.5, higher on every seed (README, quality table "With no config").
        reasons.append("featured homogeneous graph: 1-layer GCN encoder over the features, variational head, "
                       "dot-product decoder (VGAE), every training edge reconstructed, early stop on valid AUC; "
                       "the features' cosine beside the score, weighted on the validation split after training")
    else:
        settings.update(copy.deepcopy(MEDIA_SETTINGS))
        reasons.append("media graph: features fused per node, 2 SAGE layers, variational head, DistMult on "
                       "embeddings of norm 3 (bounded scores; relations start at 0.5), Adam lr 0.003, 70% of "
                       "training edges supervise")
    return settings, reasons


def merge_settings(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with every key of `override` replacing it; `model` is merged key by key."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if key == "model" and isinstance(value, Mapping) and isinstance(merged.get("model"), Mapping):
            merged["model"] = {**merged["model"], **value}
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def resolve_config(graph: HeteroData, user: Mapping[str, Any] | TrainConfig | None = None, *,
                   source: str = "config", device: torch.device | None = None) -> tuple[TrainConfig, list[str]]:
    """The TrainConfig to train `graph` with, and why.

    A TrainConfig is taken as it is (an expert's full choice); a mapping (a user's YAML and CLI
    flags) overrides the graph's recipe key by key; None is the recipe alone. `device`, when
    given, says whether bf16 products are fast there (None: assume not).
    """
    if isinstance(user, TrainConfig):
        return user, ["settings: the TrainConfig given, as it is"]
    user = dict(user or {})
    profile = profile_graph(graph, tuple(user.get("relations") or ()))
    # bf16 the device only emulates is no faster: the larger rank needs native products
    fast = device is not None and user.get("precision") != "fp32" and fast_bf16(device)
    settings, reasons = recipe_for(profile, fast_products=fast)
    if user:
        given = sorted(user) if "model" not in user else sorted(set(user) - {"model"}) + \
            [f"model.{k}" for k in sorted(user["model"] or {})]
        reasons.append(f"your settings win for: {', '.join(given)}")
    settings = merge_settings(settings, user)
    return TrainConfig.from_dict(settings, source=source), reasons


def log_reasons(log, reasons: list[str]) -> None:
    for line in reasons:
        log.info("recipe: %s", line)
