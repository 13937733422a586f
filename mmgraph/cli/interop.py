"""`mmgraph export` (GraphStorm / DGL) and `mmgraph import ogb`: moving graphs in and out of mmgraph."""
from __future__ import annotations

import argparse
import logging

log = logging.getLogger("mmgraph")

EXPORT_FORMATS = ("graphstorm", "dgl")
IMPORT_FORMATS = ("ogb",)


def add_parsers(sub, common) -> None:
    """Add the `export` and `import` subcommands to the main parser's subparsers."""
    p = sub.add_parser("export", help="write a graph for GraphStorm (Parquet + gconstruct JSON) or DGL")
    p.add_argument("graph_dir", metavar="GRAPH_DIR")
    p.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    p.add_argument("-o", "--output", required=True, metavar="DIR")
    p.add_argument("--missing", choices=("null", "zeros"), default="zeros",
                   help="graphstorm: a missing feature is zeros plus a NAME_mask column (default; what "
                        "gconstruct accepts) or null")
    p.add_argument("--force", action="store_true", help="replace an existing output folder")
    common(p)

    p = sub.add_parser("import", help="read a dataset in another library's format into a graph folder")
    p.add_argument("source_format", choices=IMPORT_FORMATS, metavar="FORMAT", help="ogb")
    p.add_argument("folder", metavar="FOLDER", help="an OGB link-prediction dataset folder (raw/ and split/)")
    p.add_argument("-o", "--output", required=True, metavar="GRAPH_DIR")
    p.add_argument("--split", default=None, help="the split type under split/ when there are several")
    p.add_argument("--node-type", default=None,
                   help="node type name of a homogeneous graph (default node, or entity for a KG)")
    p.add_argument("--relation", default="link", help="relation name of a homogeneous graph (default link)")
    p.add_argument("--force", action="store_true", help="replace an existing output folder")
    common(p)


def cmd_export(args: argparse.Namespace) -> int:
    from mmgraph.data.graph_io import load_graph

    if args.format == "dgl":
        from mmgraph.data.export_dgl import export_dgl, import_dgl

        import_dgl()  # fail on a missing package before loading the graph
        export_dgl(load_graph(args.graph_dir), args.output, force=args.force)
    else:
        from mmgraph.data.export_graphstorm import export_graphstorm

        export_graphstorm(load_graph(args.graph_dir), args.output, force=args.force, missing=args.missing)
    log.info("exported %s as %s to %s", args.graph_dir, args.format, args.output)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from mmgraph.data.graph import graph_summary
    from mmgraph.data.graph_io import load_graph
    from mmgraph.data.ogb_format import import_ogb

    out = import_ogb(args.folder, args.output, split=args.split, force=args.force, node_type=args.node_type,
                     relation=args.relation)
    log.info("%s", graph_summary(load_graph(out)))
    return 0
