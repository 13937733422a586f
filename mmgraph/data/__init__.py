"""Manifests, tables, graph building, graph files and kNN relations.

`build_graph(manifest)` turns a manifest (CONTRACT.md section 1) into a `HeteroData`;
`write_graph`/`load_graph` store it as GRAPH_DIR (section 3). Names load lazily so that
`import mmgraph.data` stays cheap.
"""
from __future__ import annotations

from mmgraph._lazy import lazy_exports

_EXPORTS = {
    "load_manifest": "mmgraph.data.manifest",
    "Manifest": "mmgraph.data.manifest",
    "NodeSpec": "mmgraph.data.manifest",
    "FeatureSpec": "mmgraph.data.manifest",
    "KnnSpec": "mmgraph.data.manifest",
    "Endpoint": "mmgraph.data.manifest",
    "TableEdgeSpec": "mmgraph.data.manifest",
    "TripleSpec": "mmgraph.data.manifest",
    "MODALITIES": "mmgraph.data.schema",
    "Table": "mmgraph.data.tables",
    "read_table": "mmgraph.data.tables",
    "build_graph": "mmgraph.data.builder",
    "write_graph": "mmgraph.data.graph_io",
    "load_graph": "mmgraph.data.graph_io",
    "load_report": "mmgraph.data.graph_io",
    "knn_graph": "mmgraph.data.knn",
    "FilterIndex": "mmgraph.data.true_edges",
    "edge_key": "mmgraph.data.graph",
    "parse_edge_key": "mmgraph.data.graph",
    "graph_summary": "mmgraph.data.graph",
    "write_tables": "mmgraph.data.export_tables",
    "read_export": "mmgraph.data.export_tables",
    "export_graphstorm": "mmgraph.data.export_graphstorm",
    "export_dgl": "mmgraph.data.export_dgl",
    "dgl_graph_data": "mmgraph.data.export_dgl",
    "load_ogb_linkprop": "mmgraph.data.ogb_format",
    "import_ogb": "mmgraph.data.ogb_format",
}

__all__, __getattr__, __dir__ = lazy_exports("mmgraph.data", _EXPORTS, globals())
