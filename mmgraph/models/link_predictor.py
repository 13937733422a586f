r"""LinkPredictor: features -> fusion -> heterogeneous GNN -> (variational) embedding -> scorer."""
from __future__ import annotations

import os
from typing import Any, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmgraph.errors import InputError
from mmgraph.models.config import ModelConfig
from mmgraph.models.registry import conv_options, make_fusion, make_scorer
from mmgraph.models.schema import EdgeType, GraphSchema
from mmgraph.nn.degree_prior import DegreePrior
from mmgraph.nn.named import NamedModuleDict, name_rows
from mmgraph.nn.projection import FeatureProjection
from mmgraph.nn.similarity import FeatureSimilarity
from mmgraph.nn.variational import VariationalHead, kl_divergence
from mmgraph.utils import atomic_torch_save, gather_rows

__all__ = ["LinkPredictor"]

_FORMAT = "mmgraph.LinkPredictor"
_VERSION = 1


class LinkPredictor(nn.Module):
    r"""A link predictor composed of parts (as PyKEEN's ERModel): representation, then interaction.

    .. math::
        s_{v,k} = \mathrm{proj}_{t,k}(x_{v,k}), \quad h_v = \mathrm{fuse}_t(s_{v,\cdot}), \quad
        z = \mathrm{head}(\mathrm{GNN}(h)), \quad f(u, r, v) = \mathrm{score}(z_u, w_r, z_v)

    where :math:`w_r` is a row of a relation table over ``schema.relations``. With
    ``config.variational`` the head is a :class:`~mmgraph.nn.VariationalHead` and ``embed``
    returns its KL term (unweighted: the trainer applies ``KLSchedule``); otherwise a linear
    head and a KL of 0. ``num_layers=0`` skips message passing (features and embeddings only).

    Shapes:
        - ``embed(x_dict {t: {f: [N_t, d_f]}}, mask_dict {t: {f: [N_t]}}, edge_index_dict
          {(s, r, t): [2, E]}, n_id_dict {t: [N_t]} | None) -> ({t: [N_t, channels]}, [])``
        - ``score(rel, [B, d], [B, d]) -> [B]``; ``score_tails(rel, [B, d], [N, d]) -> [B, N]``;
          ``score_heads(rel, [N, d], [B, d]) -> [B, N]``

    Example::

        model = LinkPredictor(ModelConfig(channels=64), GraphSchema.from_graph(g, relations, mp_edge_types))
        z, kl = model.embed(x_dict, mask_dict, edge_index_dict)
        scores = model.score_tails(("clip", "says", "word"), z["clip"][:8], z["word"])   # [8, N_word]
    """

    # State of the score terms: counted from this graph's training edges or fitted on its
    # validation split after training, so never carried from one run to another (`transfer_weights`).
    GRAPH_STATE = ("similarity.", "degree_prior.")

    def __init__(self, config: ModelConfig, schema: GraphSchema):
        super().__init__()
        self.config = config
        self.schema = schema
        c = config.channels
        # feature_input off: the features feed only the similarity term (mmgraph.nn.similarity), if any
        input_dims = schema.feature_dims if config.feature_input else {t: {} for t in schema.feature_dims}
        self.projection = FeatureProjection(input_dims, c, num_nodes=schema.num_nodes,
                                            learned_types=self._learned_types(config, schema, input_dims),
                                            feature_dropout=config.feature_dropout, dropout=config.dropout,
                                            embedding_std=config.embedding_init_std)
        self.fusion = make_fusion(config, self.projection.slot_names)
        self.gnn = self._make_gnn(config, schema)
        if config.variational:
            self.head = VariationalHead(c, c, list(schema.node_types))
        elif config.linear_head:  # formerly a list by position over node_types (read back by `legacy`)
            self.head = NamedModuleDict({t: nn.Linear(c, c) for t in schema.node_types}, legacy="position")
        else:  # pure embedding models (ComplEx-N3): a dense head would only re-parametrise them
            self.head = NamedModuleDict({t: nn.Identity() for t in schema.node_types})
        self.scorer = make_scorer(config, c)
        self.similarity = FeatureSimilarity(len(schema.relations)) if config.feature_similarity else None
        self.degree_prior = DegreePrior(schema.relations, schema.num_nodes) if config.degree_prior else None
        self._relation_index = {rel: i for i, rel in enumerate(schema.relations)}
        rd = self.scorer.relation_dim(c)
        self.relation_vectors = nn.Parameter(torch.empty(len(schema.relations), rd)) if rd else None
        name_rows(self, "relation_vectors", list(schema.relations))  # one row per scored relation
        self.reset_parameters()

    @staticmethod
    def _learned_types(config: ModelConfig, schema: GraphSchema,
                       input_dims: dict[str, dict[str, int]]) -> tuple[str, ...]:
        featureless = [t for t in schema.node_types if not input_dims.get(t)]
        if config.learned_embeddings == "none" and featureless:
            raise InputError(f"model config: learned_embeddings = 'none', but node type(s) {featureless} "
                             f"have no features; use 'featureless' or 'all'")
        return tuple(schema.node_types) if config.learned_embeddings == "all" else ()

    @staticmethod
    def _make_gnn(config: ModelConfig, schema: GraphSchema) -> nn.Module | None:
        if config.num_layers == 0:
            return None
        if not schema.edge_types:
            raise InputError("model config: num_layers > 0 needs message-passing edge types; "
                             "the schema has none")
        from mmgraph.nn.hetero_gnn import HeteroGNN  # the heaviest import; not needed with num_layers = 0

        return HeteroGNN(config.channels, schema.metadata, num_layers=config.num_layers, conv=config.conv,
                         residual=config.residual, norm=config.norm, dropout=config.dropout, act=config.act,
                         **conv_options(config))

    def reset_parameters(self) -> None:
        for module in (self.projection, self.fusion, self.gnn, self.scorer, self.similarity, self.degree_prior):
            if module is not None:
                module.reset_parameters()
        if isinstance(self.head, VariationalHead):
            self.head.reset_parameters()
        else:
            for lin in self.head.values():
                if isinstance(lin, nn.Linear):
                    lin.reset_parameters()
        if self.relation_vectors is not None:
            self.scorer.init_relations_(self.relation_vectors.data)

    @property
    def relations(self) -> list[EdgeType]:
        return list(self.schema.relations)

    # --- embedding ---------------------------------------------------------------------------
    def embed(self, x_dict: dict[str, dict[str, Tensor]], mask_dict: dict[str, dict[str, Tensor]],
              edge_index_dict: dict[EdgeType, Tensor], n_id_dict: dict[str, Tensor] | None = None,
              num_sampled_nodes_dict: dict[str, list[int]] | None = None
              ) -> tuple[dict[str, Tensor], Tensor]:
        """Node embeddings of every node type, and the KL term (0 unless variational and training).

        ``num_sampled_nodes_dict`` (``SampledSubgraph.num_sampled_nodes``: a hop-ordered sample,
        seeds first) trims each layer to the rows the layers above read (:mod:`mmgraph.nn.trim`):
        the result holds only the seeds' rows of each type (the same values as untrimmed; the KL
        is their mean). Every sampled node is read by the first layer, so all are projected.
        """
        hops = self.config.num_layers
        if num_sampled_nodes_dict is not None and any(sum(c[hops + 1:]) for c in num_sampled_nodes_dict.values()):
            raise InputError(f"num_sampled_nodes_dict: the sample has nodes beyond {hops} hops; trimming needs "
                             f"as many sampled hops as layers")
        h = self.encode_nodes(x_dict, mask_dict, n_id_dict)
        if self.gnn is not None:
            h = self.gnn(h, edge_index_dict, num_sampled_nodes_dict=num_sampled_nodes_dict)
        elif num_sampled_nodes_dict is not None:
            h = {t: v[:num_sampled_nodes_dict[t][0]] if t in num_sampled_nodes_dict else v for t, v in h.items()}
        z, kl = self.readout(h)
        return self.attach_term_columns(z, x_dict, mask_dict, n_id_dict), kl

    def attach_term_columns(self, z: dict[str, Tensor], x_dict: dict[str, dict[str, Tensor]],
                            mask_dict: dict[str, dict[str, Tensor]],
                            n_id_dict: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        """In eval mode, the columns the score terms read after the ``channels`` of each row: with
        ``degree_prior`` every type's log training degrees (``mmgraph.nn.degree_prior``), then with
        ``feature_similarity`` each featured type's unit feature vector (``mmgraph.nn.similarity``).
        Training leaves ``z`` as it is: the terms' weights are fitted after training."""
        if self.training or (self.similarity is None and self.degree_prior is None):
            return z
        out = dict(z)
        for t, v in z.items():
            parts = [v]
            if self.degree_prior is not None:
                ids = None if n_id_dict is None or t not in n_id_dict else n_id_dict[t][:v.size(0)]
                parts.append(self.degree_prior.rows(t, v.size(0), ids).to(v.dtype))
            if self.similarity is not None and x_dict.get(t):
                unit = self.similarity.unit_features(x_dict[t], mask_dict.get(t, {}))[:v.size(0)]
                parts.append(unit.to(v.dtype))
            out[t] = torch.cat(parts, dim=-1) if len(parts) > 1 else v
        return out

    def encode_nodes(self, x_dict: dict[str, dict[str, Tensor]], mask_dict: dict[str, dict[str, Tensor]],
                     n_id_dict: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
        """The GNN's input: features projected and fused per node (no message passing)."""
        tokens, token_mask = self.projection(x_dict, mask_dict, n_id_dict)
        return self.fusion(tokens, token_mask)

    def readout(self, h: dict[str, Tensor]) -> tuple[dict[str, Tensor], Tensor]:
        """The GNN's output -> embeddings (head, norm bound) and the KL term; per node."""
        any_h = next(iter(h.values()))
        kl = any_h.new_zeros((), dtype=torch.float32)
        if isinstance(self.head, VariationalHead):
            z, mu, logvar = self.head(h)
            if self.training:
                kl = kl_divergence(mu, logvar, free_bits=self.config.free_bits)
        else:
            z = {t: self.head[t](x) for t, x in h.items()}
        if self.config.embedding_norm > 0:
            # Bounded norms keep scores comparable across nodes, which ranking heads against
            # each other (the (?, r, t) direction) needs; the relation vectors carry the scale.
            z = {t: self.config.embedding_norm * F.normalize(v, dim=-1) for t, v in z.items()}
        return z, kl

    # --- scoring -----------------------------------------------------------------------------
    def relation_vector(self, rel: Iterable[str], batch: int) -> Tensor | None:
        """The relation's vector repeated ``batch`` times (None for scorers without one)."""
        key = tuple(rel)
        if key not in self._relation_index:
            scored = ", ".join("|".join(r) for r in self.schema.relations)
            raise InputError(f"relation {'|'.join(key)} is not scored by this model (it scores: {scored})")
        if self.relation_vectors is None:
            return None
        return self.relation_vectors[self._relation_index[key]].expand(batch, -1)

    def relation_vectors_for(self, rels: Sequence[EdgeType], which: Tensor) -> Tensor | None:
        """Row i holds the vector of ``rels[which[i]]``: one scorer call for a batch mixing relations."""
        if self.relation_vectors is None:
            return None
        rows = torch.tensor([self._relation_index[tuple(r)] for r in rels], device=which.device)
        return gather_rows(self.relation_vectors, rows[which])

    def _split(self, rel: EdgeType, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor, list]:
        """``a`` and ``b`` as the scorer reads them, and the score terms that apply (eval-mode
        embeddings carry their columns, and the relation's weight is not 0): ``[(term, row, a's
        columns, b's columns)]``. Each term answers ``pairs``, ``tails`` and ``heads``."""
        c = self.config.channels
        if a.size(-1) == c:
            return a, b, []
        index, start, terms = self._relation_index[tuple(rel)], c, []
        if self.degree_prior is not None:
            end = start + self.degree_prior.width
            if self.degree_prior.applies(index):
                terms.append((self.degree_prior, index, a[..., start:end], b[..., start:end]))
            start = end
        if self.similarity is not None and b.size(-1) == a.size(-1) > start and self.similarity.applies(index):
            terms.append((self.similarity, index, a[..., start:], b[..., start:]))
        return a[..., :c], b[..., :c], terms

    @staticmethod
    def _add_terms(scores: Tensor, terms: list, kind: str) -> Tensor:
        """``scores`` plus every applying term's ``pairs`` / ``tails`` / ``heads``."""
        for term, index, a, b in terms:
            scores = scores + getattr(term, kind)(index, a, b).to(scores.dtype)
        return scores

    def score(self, rel: EdgeType, z_src: Tensor, z_dst: Tensor) -> Tensor:
        """Scores ``[B]`` of the pairs ``(z_src[i], rel, z_dst[i])``."""
        src, dst, terms = self._split(rel, z_src, z_dst)
        return self._add_terms(self.scorer(src, self.relation_vector(rel, z_src.size(0)), dst), terms, "pairs")

    def score_tails(self, rel: EdgeType, z_src: Tensor, z_dst_all: Tensor) -> Tensor:
        """Scores ``[B, N]`` of each source against every candidate target."""
        src, dst_all, terms = self._split(rel, z_src, z_dst_all)
        scores = self.scorer.score_tails(src, self.relation_vector(rel, z_src.size(0)), dst_all)
        return self._add_terms(scores, terms, "tails")

    def score_heads(self, rel: EdgeType, z_src_all: Tensor, z_dst: Tensor) -> Tensor:
        """Scores ``[B, N]`` of every candidate source against each target."""
        src_all, dst, terms = self._split(rel, z_src_all, z_dst)
        scores = self.scorer.score_heads(src_all, self.relation_vector(rel, z_dst.size(0)), dst)
        return self._add_terms(scores, terms, "heads")

    # --- persistence -------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, extra: dict | None = None) -> None:
        """Write weights, config, schema and ``extra`` (plain values and tensors) atomically."""
        extra = dict(extra or {})
        _check_plain(extra, "extra")
        atomic_torch_save({
            "format": _FORMAT,
            "version": _VERSION,
            "config": self.config.to_dict(),
            "schema": self.schema.to_dict(),
            "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()},
            "extra": extra,
        }, path)

    @classmethod
    def load(cls, path: str | os.PathLike,
             map_location: str | torch.device = "cpu") -> tuple["LinkPredictor", dict]:
        """Rebuild a saved model (in eval mode) and return it with the ``extra`` it was saved with."""
        try:
            payload = torch.load(path, map_location=map_location, weights_only=True)
        except FileNotFoundError:
            raise InputError(f"{path}: no such model file") from None
        except Exception as e:  # unpickling errors come in many types
            raise InputError(f"{path}: not a readable mmgraph model file ({type(e).__name__}: {e})") from None
        if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
            raise InputError(f"{path}: not an mmgraph model file")
        if payload.get("version", 0) > _VERSION:
            raise InputError(f"{path}: written by a newer mmgraph (format version {payload['version']})")
        saved = dict(payload["config"])
        if saved.get("feature_similarity") and "feature_input" not in saved:
            saved["feature_input"] = False   # saved before feature_input: the term kept features out of the input
        config = ModelConfig.from_dict(saved, source=str(path))
        model = cls(config, GraphSchema.from_dict(payload["schema"]))
        model.load_state_dict(payload["state_dict"])
        return model.to(map_location).eval(), payload["extra"]

    def __repr__(self) -> str:
        c = self.config
        return (f"{type(self).__name__}(channels={c.channels}, conv={c.conv!r}, num_layers={c.num_layers}, "
                f"fusion={c.fusion!r}, scorer={c.scorer!r}, variational={c.variational}, "
                f"relations={len(self.schema.relations)})")


def _check_plain(value: Any, where: str) -> None:
    """Only what ``torch.load(weights_only=True)`` reads back: plain containers, scalars, tensors."""
    if value is None or isinstance(value, (bool, int, float, str, Tensor)):
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"{where}: key {k!r} must be a str or int")
            _check_plain(v, f"{where}[{k!r}]")
    else:
        raise TypeError(f"{where}: {type(value).__name__} cannot be saved with the model; use plain values")
