"""`mmgraph export --format dgl`: the graph as a DGL heterograph file (`dgl.save_graphs`).

`dgl` is optional and imported only here, at call time: it ships native libraries per torch
version and is never a dependency of mmgraph. `dgl_graph_data` is the pure part (the dicts that
`dgl.heterograph` and `ndata`/`edata` take) and needs no dgl; `export_dgl` makes the dgl calls.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from mmgraph.data.export_tables import graph_features, graph_ids
from mmgraph.errors import InputError
from mmgraph.utils import atomic_dir

log = logging.getLogger(__name__)

DGL_FILE = "graph.dgl"
DGL_MISSING = ("--format dgl needs the `dgl` package, which is not installed (or does not import next "
               "to torch {torch}): install the build that matches your torch and CUDA versions with the "
               "pip command that https://www.dgl.ai/pages/start.html gives, or use `--format graphstorm`, "
               "which needs nothing extra")


@dataclass(frozen=True)
class DGLGraphData:
    """What a DGL heterograph is made of, as plain tensors.

    `edges[(src, rel, dst)] = (src_ids [E], dst_ids [E])` and `num_nodes[type]` go to
    `dgl.heterograph(edges, num_nodes)`; `ndata[type][NAME]` (features `[N, d]` float32 and masks
    `NAME_mask` `[N]` bool) to `g.nodes[type].data`; `edata[(src, rel, dst)]["split"]` (`[E]` long,
    0 train / 1 valid / 2 test) to `g.edges[etype].data`.
    """

    edges: dict[tuple[str, str, str], tuple[torch.Tensor, torch.Tensor]]
    num_nodes: dict[str, int]
    ndata: dict[str, dict[str, torch.Tensor]]
    edata: dict[tuple[str, str, str], dict[str, torch.Tensor]]


def dgl_graph_data(graph) -> DGLGraphData:
    """Split a `HeteroData` into the pieces `dgl.heterograph` and `ndata`/`edata` take.

    Example::
        data = dgl_graph_data(load_graph("graph"))
        g = dgl.heterograph(data.edges, data.num_nodes)
    """
    features = graph_features(graph)
    num_nodes = {t: int(graph[t].num_nodes) for t in graph.node_types}
    ndata = {}
    for t in graph.node_types:
        store = graph[t]
        ndata[t] = {}
        for name in features[t]:
            ndata[t][name] = store[name].detach().cpu().float()
            ndata[t][f"{name}_mask"] = store[f"{name}_mask"].detach().cpu().bool()
    edges, edata = {}, {}
    for edge_type in graph.edge_types:
        store = graph[edge_type]
        edge_index = store.edge_index.detach().cpu().long()
        edges[edge_type] = (edge_index[0], edge_index[1])
        edata[edge_type] = {"split": store.split.detach().cpu().long()} if "split" in store else {}
    return DGLGraphData(edges=edges, num_nodes=num_nodes, ndata=ndata, edata=edata)


def import_dgl():
    """`import dgl`, or an InputError that names the package and how to install it."""
    try:
        import dgl
    except Exception as e:  # ImportError, or OSError/RuntimeError of a native library built for another torch
        raise InputError(DGL_MISSING.format(torch=torch.__version__)) from e
    return dgl


def export_dgl(graph, out_dir: str | os.PathLike, *, force: bool = False) -> Path:
    """Write `out_dir/graph.dgl` (one heterograph, `dgl.save_graphs`), `ids/TYPE.txt` and `mmgraph.json`.

    Load it with `dgl.load_graphs("out_dir/graph.dgl")[0][0]`; node features and their masks are
    in `g.nodes[TYPE].data`, the split in `g.edges[ETYPE].data["split"]`.
    """
    dgl = import_dgl()
    data = dgl_graph_data(graph)
    g = dgl.heterograph(dict(data.edges), num_nodes_dict=data.num_nodes)
    for t, tensors in data.ndata.items():
        for name, value in tensors.items():
            g.nodes[t].data[name] = value
    for edge_type, tensors in data.edata.items():
        for name, value in tensors.items():
            g.edges[edge_type].data[name] = value
    ids = graph_ids(graph)
    with atomic_dir(out_dir, force=force) as tmp:
        dgl.save_graphs(str(tmp / DGL_FILE), [g])
        (tmp / "ids").mkdir()
        for t, type_ids in ids.items():
            (tmp / "ids" / f"{t}.txt").write_text("".join(f"{i}\n" for i in type_ids), encoding="utf-8")
        meta = {k: v for k, v in (getattr(graph, "mmgraph", None) or {}).items() if k != "ids"}
        (tmp / "mmgraph.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    log.info("wrote DGL graph to %s", Path(out_dir) / DGL_FILE)
    return Path(out_dir)
