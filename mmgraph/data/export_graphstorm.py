"""`mmgraph export --format graphstorm`: Parquet tables + the JSON config GraphStorm's
graph construction reads (`python -m graphstorm.gconstruct.construct_graph --conf-file ...`).

The config follows GraphStorm's "gconstruct-v0.1" schema as documented in
awslabs/graphstorm docs/source/cli/graph-construction/single-machine-gconstruct.rst and
raw_data.rst ("Label split files"), and as read by python/graphstorm/gconstruct/transform.py
(`parse_label_ops`: `custom_split_filenames` with `column` naming the split files' id columns;
for edges a `CustomLabelProcessor` keyed by `(source_id_col, dest_id_col)`) and file_io.py
(`read_index_parquet`: two columns -> (source id, destination id) pairs). Edge types that carry a
train/valid/test split get a `link_prediction` label with those custom split files; the others
are message-passing edges only. Paths in the config are relative to DIR: run gconstruct there.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from mmgraph.data.export_tables import DST_ID, NODE_ID, SRC_ID, edge_dir_name, graph_ids, write_tables
from mmgraph.data.schema import SPLITS
from mmgraph.utils import atomic_dir

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
GS_VERSION = "gconstruct-v0.1"


def export_graphstorm(graph, out_dir: str | os.PathLike, *, force: bool = False,
                      missing: str = "zeros") -> Path:
    """Write GraphStorm input (tables, config.json, README.txt) for `graph` into `out_dir`, atomically.

    Example::
        export_graphstorm(load_graph("graph"), "gs-input")
        # cd gs-input && python -m graphstorm.gconstruct.construct_graph --conf-file config.json ...
    """
    name = str((getattr(graph, "mmgraph", None) or {}).get("name") or "mmgraph")
    with atomic_dir(out_dir, force=force) as tmp:
        meta = write_tables(graph, tmp, missing=missing)
        config = graphstorm_config(meta, _write_split_files(graph, meta, tmp))
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        (tmp / "README.txt").write_text(_readme(name, meta), encoding="utf-8")
    incomplete = _incomplete_features(meta)
    if incomplete:
        log.warning("features with missing rows are null in the tables: %s; GraphStorm's gconstruct needs "
                    "every row filled: export again with --missing zeros", ", ".join(incomplete))
    log.info("wrote GraphStorm input to %s", out_dir)
    return Path(out_dir)


def graphstorm_config(meta: dict, split_files: dict[tuple, dict[str, str]]) -> dict:
    """The gconstruct JSON for tables described by `meta` (from `write_tables`)."""
    nodes = []
    for t, info in meta["nodes"].items():
        node = {"node_type": t, "format": {"name": "parquet"}, "files": [info["files"]],
                "node_id_col": NODE_ID}
        features = []
        for name in info["features"]:
            # a Noop transform: the vectors are mmgraph's encodings already
            features.append({"feature_col": name, "feature_name": name, "out_dtype": "float32"})
            if meta["missing"] == "zeros":
                features.append({"feature_col": f"{name}_mask", "feature_name": f"{name}_mask"})
        if features:
            node["features"] = features
        nodes.append(node)
    edges = []
    for info in meta["edges"]:
        edge_type = tuple(info["relation"])
        edge = {"relation": list(edge_type), "format": {"name": "parquet"}, "files": [info["files"]],
                "source_id_col": SRC_ID, "dest_id_col": DST_ID}
        if edge_type in split_files:
            custom = dict(split_files[edge_type])
            custom["column"] = [SRC_ID, DST_ID]
            edge["labels"] = [{"task_type": "link_prediction", "custom_split_filenames": custom}]
        edges.append(edge)
    return {"version": GS_VERSION, "nodes": nodes, "edges": edges}


def _write_split_files(graph, meta: dict, out: Path) -> dict[tuple, dict[str, str]]:
    """splits/SRC___REL___DST/{train,valid,test}.parquet: the (src_id, dst_id) pairs of each split."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids = {t: np.asarray(v, dtype=object) for t, v in graph_ids(graph).items()}
    files: dict[tuple, dict[str, str]] = {}
    for info in meta["edges"]:
        if not info["split"]:
            continue
        edge_type = tuple(info["relation"])
        store = graph[edge_type]
        src, dst = store.edge_index.cpu().numpy()
        split = store.split.cpu().numpy()
        folder = out / "splits" / edge_dir_name(edge_type)
        folder.mkdir(parents=True)
        files[edge_type] = {}
        for code, key in enumerate(SPLITS):  # GraphStorm's keys are ours: train, valid, test
            keep = split == code
            if not keep.any():  # gconstruct treats a missing key as an empty split
                continue
            table = pa.table({SRC_ID: pa.array(ids[edge_type[0]][src[keep]], type=pa.string()),
                              DST_ID: pa.array(ids[edge_type[2]][dst[keep]], type=pa.string())})
            pq.write_table(table, folder / f"{key}.parquet")
            files[edge_type][key] = f"splits/{edge_dir_name(edge_type)}/{key}.parquet"
    return files


def _incomplete_features(meta: dict) -> list[str]:
    if meta["missing"] == "zeros":
        return []
    return [f"{t}.{name}" for t, info in meta["nodes"].items() for name, feat in info["features"].items()
            if feat["missing"]]


def _readme(name: str, meta: dict) -> str:
    graph_name = "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "mmgraph"
    lines = [
        f"GraphStorm input exported by mmgraph from graph {name!r}.",
        "",
        "Build a partitioned DistDGL graph with GraphStorm's graph construction (run it in this folder:",
        "the paths in config.json are relative to it):",
        "",
        "    python -m graphstorm.gconstruct.construct_graph --conf-file config.json \\",
        f"        --output-dir gs-graph --graph-name {graph_name} --num-parts 1 \\",
        "        --add-reverse-edges --remap-node-id",
        "",
        "Layout: nodes/TYPE/ and edges/SRC___REL___DST/ hold Parquet tables (node_id; src_id, dst_id,",
        "split); splits/SRC___REL___DST/{train,valid,test}.parquet hold the (src_id, dst_id) pairs of",
        "each split, given to GraphStorm as custom link-prediction splits; edge types without a split",
        "are message-passing edges only. Node features are mmgraph's encoded vectors (list<float32>).",
        "mmgraph.json lets `mmgraph.data.read_export(DIR)` read the tables back into a HeteroData.",
    ]
    incomplete = _incomplete_features(meta)
    if incomplete:
        lines += ["", f"NOTE: these features have missing rows, stored as null: {', '.join(incomplete)}.",
                  "gconstruct needs every row of a feature filled: export again with `--missing zeros`",
                  "(zeros plus a NAME_mask column that says which rows are real)."]
    return "\n".join(lines) + "\n"
