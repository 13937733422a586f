"""A graph as Parquet tables (one folder per node type and per edge type) and back.

This is the shared layer of `mmgraph export`: GraphStorm's graph construction reads these
tables (`mmgraph.data.export_graphstorm` adds its JSON config), and `read_export` turns them
back into the `HeteroData` they came from. Layout of DIR:

    nodes/TYPE/part-00000.parquet       node_id (string) + one list<float32> column per feature;
                                        a missing feature is null (or zeros + NAME_mask, see below)
    edges/SRC___REL___DST/part-00000.parquet
                                        src_id, dst_id (strings) + split ("train"/"valid"/"test")
                                        where the graph has one
    mmgraph.json                        what `read_export` needs: node and edge types, files,
                                        feature names and dims, and the graph's `.mmgraph` record

`missing="zeros"` writes zeros instead of nulls and adds an int8 `NAME_mask` column, for
readers (GraphStorm's gconstruct among them) that need every row of a feature filled.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from mmgraph.data.schema import SPLITS
from mmgraph.errors import InputError

META_FILE = "mmgraph.json"
NODE_ID = "node_id"
SRC_ID, DST_ID, SPLIT = "src_id", "dst_id", "split"
PART = "part-00000.parquet"
MISSING = ("null", "zeros")


def edge_dir_name(edge_type: tuple[str, str, str]) -> str:
    """`("clip", "says", "word")` -> `"clip___says___word"` (OGB's folder naming)."""
    return "___".join(edge_type)


def graph_features(graph) -> dict[str, list[str]]:
    """Feature names per node type: the `.mmgraph` record's, else every float `[N, d]` with a mask."""
    recorded = (getattr(graph, "mmgraph", None) or {}).get("features")
    out = {}
    for t in graph.node_types:
        store = graph[t]
        if recorded is not None:
            out[t] = list(recorded.get(t, {}))
        else:
            out[t] = [k for k in store.keys() if f"{k}_mask" in store and torch.is_tensor(store[k])
                      and store[k].dim() == 2]
    return out


def graph_ids(graph) -> dict[str, list[str]]:
    """Original ids per node type from `.mmgraph["ids"]`, else row positions as strings."""
    recorded = (getattr(graph, "mmgraph", None) or {}).get("ids") or {}
    return {t: [str(i) for i in recorded.get(t, range(int(graph[t].num_nodes)))] for t in graph.node_types}


def write_tables(graph, out: str | os.PathLike, *, missing: str = "null") -> dict:
    """Write the node and edge tables and mmgraph.json into the existing folder `out`; returns the meta.

    Example::
        with atomic_dir("export") as tmp:
            meta = write_tables(load_graph("graph"), tmp)
        g = read_export("export")
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if missing not in MISSING:
        raise InputError(f"--missing: expected one of {', '.join(MISSING)}, got {missing!r}")
    out = Path(out)
    ids, features = graph_ids(graph), graph_features(graph)
    # the ids are in the node tables
    record = {k: v for k, v in (getattr(graph, "mmgraph", None) or {}).items() if k != "ids"}
    meta = {"format": "mmgraph-export-v1", "missing": missing, "nodes": {}, "edges": [], "mmgraph": record}
    for t in graph.node_types:
        store = graph[t]
        if len(ids[t]) != int(store.num_nodes):
            raise InputError(f"graph: node type {t!r} has {int(store.num_nodes)} nodes but "
                             f"{len(ids[t])} ids in .mmgraph['ids']")
        columns = {NODE_ID: pa.array(ids[t], type=pa.string())}
        feats = {}
        for name in features[t]:
            if name == NODE_ID:
                raise InputError(f"graph: node type {t!r}: feature name {name!r} clashes with the id column")
            x = store[name].detach().cpu().to(torch.float32).numpy()
            mask = store[f"{name}_mask"].detach().cpu().numpy().astype(bool)
            columns[name] = _list_column(x, None if missing == "zeros" else mask)
            if missing == "zeros":
                columns[f"{name}_mask"] = pa.array(mask.astype(np.int8))
            feats[name] = {"dim": int(x.shape[1]), "missing": int((~mask).sum())}
        folder = out / "nodes" / t
        folder.mkdir(parents=True)
        pq.write_table(pa.table(columns), folder / PART)
        meta["nodes"][t] = {"files": f"nodes/{t}/{PART}", "count": len(ids[t]), "features": feats}
    for edge_type in graph.edge_types:
        store = graph[edge_type]
        src_type, _, dst_type = edge_type
        src, dst = store.edge_index.detach().cpu().numpy()
        columns = {SRC_ID: pa.array(np.asarray(ids[src_type], dtype=object)[src], type=pa.string()),
                   DST_ID: pa.array(np.asarray(ids[dst_type], dtype=object)[dst], type=pa.string())}
        has_split = "split" in store
        if has_split:
            labels = np.asarray(SPLITS, dtype=object)[store.split.cpu().numpy()]
            columns[SPLIT] = pa.array(labels, type=pa.string())
        folder = out / "edges" / edge_dir_name(edge_type)
        folder.mkdir(parents=True)
        pq.write_table(pa.table(columns), folder / PART)
        meta["edges"].append({"relation": list(edge_type), "count": int(src.shape[0]), "split": has_split,
                              "files": f"edges/{edge_dir_name(edge_type)}/{PART}"})
    (out / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta


def _list_column(x: np.ndarray, mask: np.ndarray | None):
    """A list<float32> column of the rows of `x`; rows where `mask` is False are null."""
    import pyarrow as pa

    n, dim = x.shape
    offsets = pa.array(np.arange(n + 1, dtype=np.int64) * dim, type=pa.int64())
    values = pa.array(np.ascontiguousarray(x).reshape(-1))
    nulls = None if mask is None else pa.array(~mask)
    return pa.LargeListArray.from_arrays(offsets, values, mask=nulls).cast(pa.list_(pa.float32()))


def read_export(export_dir: str | os.PathLike):
    """Read tables written by `write_tables` (`mmgraph export`) back into a `HeteroData`.

    Node ids, features with their masks, edge_index and split come back as they were written;
    `.mmgraph` is restored from mmgraph.json (augmentation views, `NAME_views`, are not exported).

    Example::
        g = read_export("export-dir")
        g["clip"].sound.shape, g["clip"].sound_mask.sum()
    """
    from torch_geometric.data import HeteroData

    root = Path(export_dir)
    meta_path = root / META_FILE
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise InputError(f"{meta_path}: not found; {root} is not a folder written by `mmgraph export`") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{meta_path}: not valid JSON ({e})") from e
    graph = HeteroData()
    positions, ids = {}, {}
    for t, info in meta["nodes"].items():
        path = root / info["files"]
        table = _read_parquet(path)
        ids[t] = _string_column(table, NODE_ID, path)
        positions[t] = {node_id: i for i, node_id in enumerate(ids[t])}
        store = graph[t]
        store.num_nodes = len(ids[t])
        for name, feat in info["features"].items():
            x, mask = _read_feature(table, name, feat["dim"], path, meta.get("missing", "null"))
            store[name], store[f"{name}_mask"] = x, mask
    for info in meta["edges"]:
        edge_type = tuple(info["relation"])
        path = root / info["files"]
        table = _read_parquet(path)
        src = _positions(_string_column(table, SRC_ID, path), positions[edge_type[0]], path, SRC_ID)
        dst = _positions(_string_column(table, DST_ID, path), positions[edge_type[2]], path, DST_ID)
        graph[edge_type].edge_index = torch.stack([src, dst])
        if info.get("split"):
            codes = {name: i for i, name in enumerate(SPLITS)}
            labels = _string_column(table, SPLIT, path)
            bad = next((v for v in labels if v not in codes), None)
            if bad is not None:
                raise InputError(f"{path}: column {SPLIT!r}: {bad!r} is not one of {', '.join(SPLITS)}")
            graph[edge_type].split = torch.tensor([codes[v] for v in labels], dtype=torch.long)
    graph.mmgraph = dict(meta.get("mmgraph") or {})
    graph.mmgraph["ids"] = ids
    return graph


def _read_parquet(path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path)
    except FileNotFoundError as e:
        raise InputError(f"{path}: not found (listed in {META_FILE})") from e
    except (pa.ArrowInvalid, OSError) as e:
        raise InputError(f"{path}: cannot read Parquet ({e})") from e


def _column(table, name: str, path: Path):
    if name not in table.column_names:
        raise InputError(f"{path}: column {name!r} is missing (has {', '.join(table.column_names)})")
    return table.column(name)


def _string_column(table, name: str, path: Path) -> list[str]:
    values = _column(table, name, path).to_pylist()
    if any(v is None for v in values):
        raise InputError(f"{path}: column {name!r}: row {values.index(None) + 1} is empty")
    return [str(v) for v in values]


def _read_feature(table, name: str, dim: int, path: Path, missing: str) -> tuple[torch.Tensor, torch.Tensor]:
    import pyarrow.compute as pc

    column = _column(table, name, path).combine_chunks()
    n = len(column)
    mask = ~column.is_null().to_numpy(zero_copy_only=False)
    lengths = pc.fill_null(pc.list_value_length(column), dim).to_numpy(zero_copy_only=False)
    if (lengths != dim).any():
        row = int(np.flatnonzero(lengths != dim)[0])
        raise InputError(f"{path}: column {name!r}: row {row + 1} has {int(lengths[row])} numbers, "
                         f"expected {dim}")
    x = np.zeros((n, dim), dtype=np.float32)
    x[mask] = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, dim)
    if missing == "zeros":
        mask = _column(table, f"{name}_mask", path).to_numpy().astype(bool)
    return torch.from_numpy(x), torch.from_numpy(mask)


def _positions(values: list[str], position: dict[str, int], path: Path, column: str) -> torch.Tensor:
    try:
        return torch.tensor([position[v] for v in values], dtype=torch.long)
    except KeyError as e:
        raise InputError(f"{path}: column {column!r}: id {e.args[0]!r} is not in its node table") from None
