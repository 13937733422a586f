"""OGB link-prediction datasets in OGB's on-disk format, read from a local folder (no download).

A dataset folder (what `ogb.linkproppred.LinkPropPredDataset` keeps under `root/ogbl_NAME`, or
what `ogb.io.DatasetSaver` writes) holds `raw/` and `split/SPLIT_TYPE/`. The files follow
ogb/io/read_graph_raw.py and ogb/linkproppred/dataset.py:

- homogeneous, CSV: raw/edge.csv.gz, raw/num-node-list.csv.gz, optional raw/node-feat.csv.gz
  (no headers); binary: raw/data.npz (num_nodes_list, edge_index, optional node_feat)
- heterogeneous, CSV: raw/num-node-dict.csv.gz (header = node types), optional
  raw/node-feat/TYPE/node-feat.csv.gz, raw/relations/H___R___T/edge_reltype.csv.gz;
  binary: raw/num_nodes_dict.npz, optional raw/node_feat_dict.npz, raw/edge_reltype.npz
- split/SPLIT_TYPE/split_dict.pt, or train.pt, valid.pt, test.pt: dicts with `edge` [E, 2], or
  `source_node` + `target_node` [E], or `head` + `relation` + `tail` [E] (+ `head_type`,
  `tail_type` for heterogeneous graphs). Negatives (`edge_neg`, `*_neg`) are not used: mmgraph
  ranks against every candidate (filtered), which is stricter.

The graph's edges are the split's train + valid + test edges (split 0/1/2); the raw graph gives
node counts, node features (a `vector` feature `feat`) and relation names. `ogb` is not needed.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch

from mmgraph.data.graph import edge_key
from mmgraph.data.schema import SPLITS, Checker
from mmgraph.errors import InputError

FEATURE = "feat"


def load_ogb_linkprop(folder: str | os.PathLike, *, split: str | None = None, node_type: str | None = None,
                      relation: str = "link"):
    """Read an OGB link-prediction dataset folder into an mmgraph `HeteroData`.

    `split` names the folder under split/ (needed only when there are several); `node_type`
    (default "node", or "entity" for knowledge graphs) and `relation` name the types of a
    homogeneous graph. Ids are the OGB node indices as strings.

    Example::
        g = load_ogb_linkprop("dataset/ogbl_collab")
        g["node", "link", "node"].split.bincount()      # train, valid, test edge counts
        write_graph(g, ogb_report(g), "collab-graph")
    """
    from torch_geometric.data import HeteroData

    check = Checker("import ogb")
    if node_type is not None:
        check.name("--node-type", node_type, kind="node type")
    check.name("--relation", relation, kind="relation")
    root = _dataset_root(Path(folder))
    raw = root / "raw"
    split_dir = _split_dir(root, split)
    parts = {name: _load_split(split_dir, name) for name in SPLITS}
    kg = any("relation" in part for part, _ in parts.values())
    node_type = node_type or ("entity" if kg else "node")
    num_nodes, features, rel_names = _read_raw(raw, node_type)
    edges: dict[tuple, list[tuple[np.ndarray, np.ndarray, int]]] = {}
    for code, name in enumerate(SPLITS):
        part, path = parts[name]
        where = f"{path}: {name!r}"
        for edge_type, (src, dst) in _split_edges(part, where, node_type, relation, rel_names).items():
            for ids, t, key in ((src, edge_type[0], "source"), (dst, edge_type[2], "target")):
                if t not in num_nodes:
                    raise InputError(f"{where}: node type {t!r} is not in the raw graph "
                                     f"({', '.join(num_nodes)})")
                bad = np.flatnonzero((ids < 0) | (ids >= num_nodes[t]))
                if bad.size:
                    row = int(bad[0])
                    raise InputError(f"{where}: row {row + 1}: {key} node {int(ids[row])} is out of range "
                                     f"for {t!r} ({num_nodes[t]} nodes)")
            edges.setdefault(edge_type, []).append((src, dst, code))
    if not edges:
        raise InputError(f"{split_dir}: the split holds no edges")

    graph = HeteroData()
    feature_info = {}
    for t, n in num_nodes.items():
        graph[t].num_nodes = n
        if t in features:
            x = torch.from_numpy(np.ascontiguousarray(features[t], dtype=np.float32))
            if x.dim() != 2 or x.size(0) != n:
                raise InputError(f"{raw}: node features of {t!r} have shape {tuple(x.shape)}, "
                                 f"expected [{n}, dim]")
            graph[t][FEATURE], graph[t][f"{FEATURE}_mask"] = x, torch.ones(n, dtype=torch.bool)
            feature_info[t] = {FEATURE: _vector_info(int(x.size(1)))}
    for edge_type, pieces in edges.items():
        src = np.concatenate([p[0] for p in pieces])
        dst = np.concatenate([p[1] for p in pieces])
        graph[edge_type].edge_index = torch.from_numpy(np.stack([src, dst]).astype(np.int64))
        graph[edge_type].split = torch.cat([torch.full((len(p[0]),), p[2], dtype=torch.long) for p in pieces])
    graph.mmgraph = {
        "name": root.name,
        "ids": {t: [str(i) for i in range(n)] for t, n in num_nodes.items()},
        "features": {t: feature_info.get(t, {}) for t in num_nodes},
        "source": {t: {"id": None, "columns": {}} for t in num_nodes},
        "ogb": {"folder": str(root), "split": split_dir.name},
    }
    return graph


def ogb_report(graph, seconds: float = 0.0) -> dict:
    """The build.json of an imported graph (CONTRACT.md section 3)."""
    meta = graph.mmgraph
    nodes = {}
    for t in graph.node_types:
        feats = {name: {"modality": info["modality"], "encoder": info["encoder"], "dim": info["dim"],
                        "missing": int((~graph[t][f"{name}_mask"]).sum()), "bad": 0}
                 for name, info in meta["features"].get(t, {}).items()}
        nodes[t] = {"count": int(graph[t].num_nodes), "featureless": 0, "features": feats}
    edge_report = {}
    for et in graph.edge_types:
        counts = torch.bincount(graph[et].split, minlength=len(SPLITS)).tolist()
        edge_report[edge_key(et)] = {"count": int(graph[et].edge_index.size(1)),
                                     "split": dict(zip(SPLITS, counts))}
    return {"nodes": nodes, "edges": edge_report, "bad_files": [], "seconds": round(seconds, 3),
            "source": {"ogb": meta.get("ogb", {})}}


def import_ogb(folder: str | os.PathLike, out_dir: str | os.PathLike, *, split: str | None = None,
               force: bool = False, node_type: str | None = None, relation: str = "link") -> Path:
    """`mmgraph import ogb FOLDER -o GRAPH_DIR`: read the dataset and write it as a graph folder."""
    from mmgraph.data.graph_io import write_graph

    out = Path(out_dir)
    if out.exists() and not force:
        raise InputError(f"{out}: output folder exists; pass --force to replace it")
    start = time.perf_counter()
    graph = load_ogb_linkprop(folder, split=split, node_type=node_type, relation=relation)
    return write_graph(graph, ogb_report(graph, time.perf_counter() - start), out, force=force)


def _vector_info(dim: int) -> dict:
    from mmgraph.encoders import make_encoder

    encoder = make_encoder("vector")
    encoder.set_state({"dim": dim})
    return {"modality": "vector", "encoder": encoder.identity, "dim": dim, "spec": encoder.spec()}


def _dataset_root(folder: Path) -> Path:
    """The folder holding raw/ and split/: `folder` itself or its only child that has them."""
    if not folder.is_dir():
        raise InputError(f"{folder}: OGB dataset folder not found")
    if (folder / "raw").is_dir():
        return folder
    children = [c for c in sorted(folder.iterdir()) if (c / "raw").is_dir()]
    if len(children) == 1:
        return children[0]
    several = f"; several candidates: {', '.join(c.name for c in children)}" if children else ""
    raise InputError(f"{folder}: not an OGB dataset folder (expected raw/ and split/ in it{several})")


def _split_dir(root: Path, split: str | None) -> Path:
    base = root / "split"
    if not base.is_dir():
        raise InputError(f"{base}: not found; an OGB link-prediction folder has split/SPLIT_TYPE/")
    names = sorted(p.name for p in base.iterdir() if p.is_dir())
    if split is None:
        if len(names) != 1:
            raise InputError(f"{base}: several split types ({', '.join(names)}): choose one with --split"
                             if names else f"{base}: holds no split folder")
        split = names[0]
    if split not in names:
        raise InputError(f"{base / split}: not found (split types: {', '.join(names) or 'none'})")
    return base / split


def _torch_load(path: Path):
    """A split file: plain tensors/lists, or numpy arrays (DatasetSaver), loaded without pickle code."""
    core = getattr(np, "_core", None) or np.core  # numpy 2 renamed np.core
    safe = [core.multiarray._reconstruct, np.ndarray, np.dtype]
    safe += [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith("DType")]
    try:
        with torch.serialization.safe_globals(safe):
            return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as e:
        raise InputError(f"{path}: not found") from e
    except Exception as e:  # unpickling and zip errors of a broken or foreign file
        raise InputError(f"{path}: cannot read the split ({_first_line(e)})") from e


def _load_split(split_dir: Path, name: str) -> tuple[dict, Path]:
    whole = split_dir / "split_dict.pt"
    if whole.is_file():
        data = _torch_load(whole)
        if not isinstance(data, dict) or name not in data:
            raise InputError(f"{whole}: expected a dict with 'train', 'valid' and 'test'")
        part, path = data[name], whole
    else:
        path = split_dir / f"{name}.pt"
        if not path.is_file():
            raise InputError(f"{path}: not found (nor {whole.name}); an OGB split has train.pt, valid.pt "
                             "and test.pt")
        part = _torch_load(path)
    if not isinstance(part, dict):
        raise InputError(f"{path}: {name!r} is a {type(part).__name__}, expected a dict of arrays")
    return part, path


def _array(part: dict, key: str, where: str) -> np.ndarray:
    value = part[key]
    arr = value.numpy() if torch.is_tensor(value) else np.asarray(value)
    if arr.dtype.kind not in "iu":
        raise InputError(f"{where}: {key!r} holds {arr.dtype}, expected integer node indices")
    return arr.astype(np.int64)


def _split_edges(part: dict, where: str, node_type: str, relation: str,
                 rel_names: dict[int, tuple[str, str, str]]) -> dict[tuple, tuple[np.ndarray, np.ndarray]]:
    """One split dict -> {(src type, rel, dst type): (src [E], dst [E])}."""
    if "edge" in part:
        edge = _array(part, "edge", where)
        if edge.ndim != 2 or edge.shape[1] != 2:
            raise InputError(f"{where}: 'edge' has shape {edge.shape}, expected [E, 2]")
        return {(node_type, relation, node_type): (edge[:, 0], edge[:, 1])}
    if "source_node" in part and "target_node" in part:
        return {(node_type, relation, node_type): (_array(part, "source_node", where).reshape(-1),
                                                   _array(part, "target_node", where).reshape(-1))}
    if not all(k in part for k in ("head", "relation", "tail")):
        keys = ", ".join(map(str, part))
        raise InputError(f"{where}: expected 'edge', 'source_node'+'target_node' or "
                         f"'head'+'relation'+'tail'; found {keys or 'nothing'}")
    head, rel, tail = (_array(part, k, where).reshape(-1) for k in ("head", "relation", "tail"))
    n = head.shape[0]
    head_type, tail_type = (np.asarray(part[k], dtype=object) if k in part else np.full(n, node_type, object)
                            for k in ("head_type", "tail_type"))
    if not (rel.shape[0] == tail.shape[0] == head_type.shape[0] == tail_type.shape[0] == n):
        raise InputError(f"{where}: 'head', 'relation', 'tail' (and types) differ in length")
    out = {}
    keys = np.stack([head_type.astype(str), rel.astype(str), tail_type.astype(str)], axis=1)
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    for i, (ht, r, tt) in enumerate(uniq):
        keep = inverse.reshape(-1) == i
        name = rel_names[int(r)][1] if int(r) in rel_names else f"r{int(r)}"
        out[(str(ht), name, str(tt))] = (head[keep], tail[keep])
    return out


def _read_raw(raw: Path, node_type: str) -> tuple[dict[str, int], dict[str, np.ndarray], dict[int, tuple]]:
    """Node counts, node features and relation id -> triplet from raw/ (CSV or binary layout)."""
    if (raw / "data.npz").is_file():
        data = _npz(raw / "data.npz")
        counts = data["num_nodes_list"]
        features = {node_type: data["node_feat"]} if "node_feat" in data else {}
        return {node_type: _single_graph(counts, raw / "data.npz")}, features, {}
    if (raw / "num-node-list.csv.gz").is_file():
        counts = _csv(raw / "num-node-list.csv.gz").reshape(-1)
        feat = raw / "node-feat.csv.gz"
        features = {node_type: _csv(feat)} if feat.is_file() else {}
        return {node_type: _single_graph(counts, raw / "num-node-list.csv.gz")}, features, {}
    if (raw / "num_nodes_dict.npz").is_file():
        path = raw / "num_nodes_dict.npz"
        counts = {t: _single_graph(v, path) for t, v in _npz(path).items()}
        feat = raw / "node_feat_dict.npz"
        features = _npz(feat) if feat.is_file() else {}
        reltype = raw / "edge_reltype.npz"
        rels = {int(np.asarray(v).reshape(-1)[0]): tuple(k.split("___")) for k, v in _npz(reltype).items()
                if np.asarray(v).size} if reltype.is_file() else {}
        return counts, features, rels
    if (raw / "num-node-dict.csv.gz").is_file():
        import pandas as pd

        path = raw / "num-node-dict.csv.gz"
        try:
            table = pd.read_csv(path, compression="gzip")
        except Exception as e:  # pandas raises many kinds for a broken gzip or CSV
            raise InputError(f"{path}: cannot read ({e})") from e
        counts = {str(t): int(table[t].iloc[0]) for t in table.columns}
        features = {t: _csv(raw / "node-feat" / t / "node-feat.csv.gz") for t in counts
                    if (raw / "node-feat" / t / "node-feat.csv.gz").is_file()}
        rels = {}
        if (raw / "relations").is_dir():
            for sub in sorted((raw / "relations").iterdir()):
                reltype = sub / "edge_reltype.csv.gz"
                if reltype.is_file() and len(sub.name.split("___")) == 3:
                    values = _csv(reltype).reshape(-1)
                    if values.size:
                        rels[int(values[0])] = tuple(sub.name.split("___"))
        return counts, features, rels
    raise InputError(f"{raw}: no OGB graph files found (expected edge.csv.gz + num-node-list.csv.gz, "
                     "data.npz, num-node-dict.csv.gz or num_nodes_dict.npz)")


def _single_graph(counts, path: Path) -> int:
    counts = np.asarray(counts).reshape(-1)
    if counts.size != 1:
        raise InputError(f"{path}: holds {counts.size} graphs; a link-prediction dataset has exactly one")
    return int(counts[0])


def _csv(path: Path) -> np.ndarray:
    import pandas as pd

    try:
        return pd.read_csv(path, compression="gzip", header=None).values
    except Exception as e:  # a broken gzip, an empty file, a non-numeric cell
        raise InputError(f"{path}: cannot read ({_first_line(e)})") from e


def _npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except Exception as e:  # zip/format errors of a broken file
        raise InputError(f"{path}: cannot read ({_first_line(e)})") from e


def _first_line(e: Exception) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__
