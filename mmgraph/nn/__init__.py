"""Heterogeneous GNN layers, modality fusion, variational embeddings and scorers.

Every module takes dicts keyed by node type (or edge type) and returns dicts, the way PyG's
heterogeneous layers do. Names are imported lazily so that `import mmgraph.nn` stays cheap.
"""
from __future__ import annotations

from mmgraph._lazy import lazy_exports

# Eager: the function `aggregate` shares its name with its module, which every conv imports;
# without this, `mmgraph.nn.aggregate` could resolve to the module.
from mmgraph.nn.aggregate import CSR, aggregate, to_csr  # noqa: E402,F401

_EXPORTS = {
    # kernels
    "CSR": "mmgraph.nn.aggregate",
    "to_csr": "mmgraph.nn.aggregate",
    "aggregate": "mmgraph.nn.aggregate",
    # message passing
    "HGTConv": "mmgraph.nn.conv.hgt",
    "RGCNConv": "mmgraph.nn.conv.rgcn",
    "RelSAGEConv": "mmgraph.nn.conv.rel_sage",
    "CompGCNConv": "mmgraph.nn.conv.compgcn",
    "GCNConv": "mmgraph.nn.conv.gcn",
    "HeteroGNN": "mmgraph.nn.hetero_gnn",
    # features
    "FeatureProjection": "mmgraph.nn.projection",
    "MeanFusion": "mmgraph.nn.fusion",
    "GatedFusion": "mmgraph.nn.fusion",
    "AttentionFusion": "mmgraph.nn.fusion",
    # variational embedding
    "VariationalHead": "mmgraph.nn.variational",
    "KLSchedule": "mmgraph.nn.variational",
    "kl_divergence": "mmgraph.nn.variational",
    # scorers
    "DotProductScorer": "mmgraph.nn.scorers",
    "DistMultScorer": "mmgraph.nn.scorers",
    "ComplExScorer": "mmgraph.nn.scorers",
    "RotatEScorer": "mmgraph.nn.scorers",
    "TransEScorer": "mmgraph.nn.scorers",
    "MLPScorer": "mmgraph.nn.scorers",
    "ConvEScorer": "mmgraph.nn.conve",
    "ReciprocalScorer": "mmgraph.nn.reciprocal",
    "FeatureSimilarity": "mmgraph.nn.similarity",
    "DegreePrior": "mmgraph.nn.degree_prior",
}

__all__, __getattr__, __dir__ = lazy_exports("mmgraph.nn", _EXPORTS, globals())
