"""GRAPH_DIR on disk (CONTRACT.md section 3): graph.pt, ids/TYPE.txt, build.json.

The folder is written through `mmgraph.utils.atomic_dir`: everything goes to a temporary folder
that is renamed at the end, so a failed write leaves an existing GRAPH_DIR as it was.
"""
from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import torch

from mmgraph.errors import InputError
from mmgraph.utils import atomic_dir, log

GRAPH_FILE = "graph.pt"
REPORT_FILE = "build.json"
IDS_DIR = "ids"


def write_graph(graph, report: dict, out_dir: str | os.PathLike, *, force: bool = False) -> Path:
    """Write the graph, its ids and the build report into `out_dir` (atomically); returns the path."""
    ids = (getattr(graph, "mmgraph", None) or {}).get("ids")
    if ids is None:
        raise ValueError("write_graph: graph.mmgraph['ids'] is missing; build the graph with build_graph")
    with atomic_dir(out_dir, force=force) as tmp:
        torch.save(graph, tmp / GRAPH_FILE)
        (tmp / IDS_DIR).mkdir()
        for node_type, type_ids in ids.items():
            text = "".join(f"{node_id}\n" for node_id in type_ids)
            (tmp / IDS_DIR / f"{node_type}.txt").write_text(text, encoding="utf-8")
        (tmp / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    log.info("wrote %s", out_dir)
    return Path(out_dir)


def load_graph(graph_dir: str | os.PathLike):
    """Read `GRAPH_DIR/graph.pt`; a clear InputError when the folder or file is missing or broken."""
    from torch_geometric.data import HeteroData
    from torch_geometric.data.storage import (
        BaseStorage,
        EdgeStorage,
        GlobalStorage,
        NodeStorage,
    )

    graph_dir = Path(graph_dir)
    path = graph_dir / GRAPH_FILE
    if not graph_dir.is_dir():
        raise InputError(f"{graph_dir}: graph folder not found (build one with `mmgraph build`)")
    if not path.is_file():
        raise InputError(f"{path}: not found; {graph_dir} is not a graph folder written by `mmgraph build`")
    # weights_only keeps loading safe; PyG's containers are the only classes a graph needs
    safe = [HeteroData, BaseStorage, NodeStorage, EdgeStorage, GlobalStorage]
    try:
        with torch.serialization.safe_globals(safe):
            graph = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, AttributeError) as e:
        raise InputError(f"{path}: cannot read the graph (corrupt or not written by mmgraph): "
                         f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from e
    if not isinstance(graph, HeteroData) or not isinstance(getattr(graph, "mmgraph", None), dict):
        raise InputError(f"{path}: not an mmgraph graph (expected a HeteroData with .mmgraph metadata)")
    return graph


def load_report(graph_dir: str | os.PathLike) -> dict:
    """The build report `GRAPH_DIR/build.json`."""
    path = Path(graph_dir) / REPORT_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise InputError(f"{path}: not found") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not valid JSON ({e})") from e
