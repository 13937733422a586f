"""The manifest (CONTRACT.md section 1): parsed once, validated completely, frozen.

Every problem is one `InputError` naming the manifest file and the field path, e.g.
`manifest.yaml: nodes.clip.features.sound.modality: unknown modality 'audi' (expected one of
...); did you mean 'audio'?`. Paths in the manifest are relative to its folder; they come out of
`load_manifest` absolute, and tables and `npy` files are checked to exist.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mmgraph.data.schema import (
    ENDPOINT_KEYS,
    FEATURE_KEYS,
    KNN_KEYS,
    MODALITIES,
    NODE_KEYS,
    SPLITS,
    TABLE_EDGE_KEYS,
    TOP_KEYS,
    TRIPLE_KEYS,
    Checker,
)
from mmgraph.data.suggest import did_you_mean, one_of
from mmgraph.data.tables import table_format
from mmgraph.errors import InputError


@dataclass(frozen=True)
class FeatureSpec:
    """One feature of a node type: its modality and where its raw values come from.

    Exactly one source is set: `column` (media path, text, category, vector string),
    `columns` (numeric) or `npy` (a precomputed `[rows, dim]` vector matrix in table order).
    """

    modality: str
    column: str | None = None
    columns: tuple[str, ...] | None = None
    npy: Path | None = None
    encoder: str | None = None  # overrides the manifest's `encoders:` entry for this modality
    augment: int = 0  # number of augmented views stored as NAME_views

    @property
    def source(self) -> str | list[str] | None:
        """The table column(s) the feature reads, as stored in `g.mmgraph["source"]`."""
        return list(self.columns) if self.columns is not None else self.column


@dataclass(frozen=True)
class KnnSpec:
    feature: str
    k: int


@dataclass(frozen=True)
class NodeSpec:
    table: Path
    id: str
    features: dict[str, FeatureSpec] = field(default_factory=dict)
    format: str = "csv"
    header: tuple[str, ...] | None = None
    knn: KnnSpec | None = None
    auto_knn: bool = True   # `knn: false` turns off the builder's default similarity relations


@dataclass(frozen=True)
class Endpoint:
    type: str
    column: str


@dataclass(frozen=True)
class TableEdgeSpec:
    relation: str
    table: Path
    source: Endpoint
    target: Endpoint
    split: str | None = None  # column holding train / valid / test
    format: str = "csv"
    header: tuple[str, ...] | None = None

    @property
    def edge_type(self) -> tuple[str, str, str]:
        return (self.source.type, self.relation, self.target.type)


@dataclass(frozen=True)
class TripleSpec:
    """`head<TAB>relation<TAB>tail` files; `files` maps train/valid/test to a path.

    A single path (no split) is stored as `{"train": path}` with `split=False`.
    """

    files: dict[str, Path]
    source_type: str
    target_type: str
    split: bool = True


@dataclass(frozen=True)
class Manifest:
    name: str
    root: Path
    encoders: dict[str, str]
    nodes: dict[str, NodeSpec]
    edges: tuple[TableEdgeSpec | TripleSpec, ...]
    path: Path | None = None  # the manifest file, when it came from one

    @property
    def label(self) -> str:
        """How error messages name this manifest."""
        return str(self.path) if self.path is not None else "manifest"


def load_manifest(source: str | os.PathLike | Mapping, *, root: str | os.PathLike | None = None) -> Manifest:
    """Parse and validate a manifest file, or an already-parsed dict whose paths are relative to `root`."""
    if isinstance(source, Mapping):
        data, path = dict(source), None
        root = Path(root if root is not None else ".").resolve()
        check = Checker("manifest")
    else:
        path = Path(source)
        check = Checker(str(path))
        data = _read_yaml(path, check)
        root = Path(root).resolve() if root is not None else path.resolve().parent
    return _Parser(check, root).manifest(data, path)


def _read_yaml(path: Path, check: Checker) -> dict:
    import yaml

    if not path.is_file():
        check.fail("", "manifest file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        check.fail("", f"{where}invalid YAML ({getattr(e, 'problem', None) or e})")
    except (OSError, UnicodeDecodeError) as e:
        check.fail("", f"cannot read manifest: {e}")
    if data is None:
        check.fail("", "empty manifest")
    return data


class _Parser:
    """Turns the raw YAML structure into the frozen specs, field by field."""

    def __init__(self, check: Checker, root: Path):
        self.check = check
        self.root = root

    def manifest(self, data, path: Path | None) -> Manifest:
        c = self.check
        c.mapping("", data, TOP_KEYS)
        name = c.string("name", data["name"]) if "name" in data else (path.stem if path else "graph")
        encoders = self.encoders(data.get("encoders") or {})
        raw_nodes = data.get("nodes") or {}  # a knowledge graph may have triples only
        c.mapping("nodes", raw_nodes, None)
        nodes = {c.name(f"nodes.{t}", t, kind="node type"): self.node(f"nodes.{t}", spec)
                 for t, spec in raw_nodes.items()}
        raw_edges = data.get("edges") or []
        if not isinstance(raw_edges, list):
            c.fail("edges", "expected a list of edge entries (each starting with '- ')")
        if not nodes and not raw_edges:
            c.fail("", "declares no node types ('nodes:') and no edges ('edges:')")
        edges = tuple(self.edge(f"edges[{i}]", e, nodes) for i, e in enumerate(raw_edges))
        self.check_unique_edge_types(edges)
        return Manifest(name=name, root=self.root, encoders=encoders, nodes=nodes, edges=edges, path=path)

    def encoders(self, raw) -> dict[str, str]:
        c = self.check
        c.mapping("encoders", raw, None)
        out = {}
        for modality, value in raw.items():
            if modality not in MODALITIES:
                c.fail(f"encoders.{modality}", f"unknown modality {modality!r} (expected one of "
                       f"{one_of(MODALITIES)}){did_you_mean(modality, MODALITIES)}")
            out[modality] = self.encoder_name(f"encoders.{modality}", value)
        return out

    def encoder_name(self, where: str, value) -> str:
        """A packaged encoder name stays as it is; an existing local folder becomes absolute."""
        value = self.check.string(where, value)
        folder = (self.root / value)
        return str(folder.resolve()) if folder.is_dir() else value

    def node(self, where: str, raw) -> NodeSpec:
        c = self.check
        c.mapping(where, raw, NODE_KEYS, required=("table", "id"))
        table, fmt, header = self.table(where, raw)
        raw_features = raw.get("features") or {}
        c.mapping(f"{where}.features", raw_features, None)
        features = {}
        for feat, spec in raw_features.items():
            at = f"{where}.features.{feat}"
            features[c.name(at, feat, kind="feature")] = self.feature(at, spec)
        raw_knn = raw.get("knn")
        knn = self.knn(f"{where}.knn", raw_knn, features) if raw_knn not in (None, False) else None
        return NodeSpec(table=table, id=c.string(f"{where}.id", raw["id"]), features=features,
                        format=fmt, header=header, knn=knn, auto_knn=raw_knn is not False)

    def feature(self, where: str, raw) -> FeatureSpec:
        c = self.check
        c.mapping(where, raw, FEATURE_KEYS, required=("modality",))
        modality = c.string(f"{where}.modality", raw["modality"])
        if modality not in MODALITIES:
            c.fail(f"{where}.modality", f"unknown modality {modality!r} (expected one of "
                   f"{one_of(MODALITIES)}){did_you_mean(modality, MODALITIES)}")
        given = [key for key in ("column", "columns", "npy") if key in raw]
        allowed = {"numeric": ("column", "columns"), "vector": ("column", "npy")}.get(modality, ("column",))
        if len(given) != 1 or given[0] not in allowed:
            needs = f"exactly one of {one_of(allowed)}" if len(allowed) > 1 else repr(allowed[0])
            c.fail(where, f"a {modality} feature needs {needs}, got {', '.join(map(repr, given)) or 'none'}")
        column = columns = npy = None
        if "columns" in raw:
            columns = c.string_list(f"{where}.columns", raw["columns"])
        elif "npy" in raw:
            npy = self.existing_file(f"{where}.npy", raw["npy"], what="npy file")
        elif modality == "numeric":  # one numeric column is a list of one
            columns = (c.string(f"{where}.column", raw["column"]),)
        else:
            column = c.string(f"{where}.column", raw["column"])
        encoder = None
        if raw.get("encoder") is not None:
            encoder = self.encoder_name(f"{where}.encoder", raw["encoder"])
        augment = c.integer(f"{where}.augment", raw.get("augment", 0), minimum=0)
        if augment and modality not in ("image", "audio"):
            c.fail(f"{where}.augment", f"only image and audio features have augmented views, not {modality}")
        return FeatureSpec(modality=modality, column=column, columns=columns, npy=npy, encoder=encoder,
                           augment=augment)

    def knn(self, where: str, raw, features: dict[str, FeatureSpec]) -> KnnSpec:
        c = self.check
        c.mapping(where, raw, KNN_KEYS, required=("feature", "k"))
        feature = c.string(f"{where}.feature", raw["feature"])
        if feature not in features:
            c.fail(f"{where}.feature", f"unknown feature {feature!r} (features: {one_of(features)})"
                   f"{did_you_mean(feature, features)}")
        return KnnSpec(feature=feature, k=c.integer(f"{where}.k", raw["k"], minimum=1))

    def edge(self, where: str, raw, nodes: dict[str, NodeSpec]) -> TableEdgeSpec | TripleSpec:
        c = self.check
        if not isinstance(raw, Mapping):
            c.fail(where, f"expected a mapping, got {type(raw).__name__}")
        if "triples" in raw:
            return self.triples(where, raw)
        if "table" not in raw:
            c.mapping(where, raw, TABLE_EDGE_KEYS | TRIPLE_KEYS)  # a misspelt key gets its hint first
            c.fail(where, "an edge entry needs either 'table' (with relation, source, target) or 'triples'")
        c.mapping(where, raw, TABLE_EDGE_KEYS, required=("relation", "source", "target"))
        table, fmt, header = self.table(where, raw)
        relation = c.name(f"{where}.relation", c.string(f"{where}.relation", raw["relation"]),
                          kind="relation")
        ends = {}
        for end in ("source", "target"):
            c.mapping(f"{where}.{end}", raw[end], ENDPOINT_KEYS, required=("type", "column"))
            node_type = c.string(f"{where}.{end}.type", raw[end]["type"])
            if node_type not in nodes:
                c.fail(f"{where}.{end}.type", f"unknown node type {node_type!r} (node types: {one_of(nodes)})"
                       f"{did_you_mean(node_type, nodes)}")
            ends[end] = Endpoint(node_type, c.string(f"{where}.{end}.column", raw[end]["column"]))
        split = c.string(f"{where}.split", raw["split"]) if raw.get("split") is not None else None
        return TableEdgeSpec(relation=relation, table=table, source=ends["source"], target=ends["target"],
                             split=split, format=fmt, header=header)

    def triples(self, where: str, raw) -> TripleSpec:
        c = self.check
        c.mapping(where, raw, TRIPLE_KEYS, required=("triples", "source_type", "target_type"))
        files = raw["triples"]
        if isinstance(files, (str, os.PathLike)):
            paths = {"train": self.existing_file(f"{where}.triples", files, what="triples file")}
            split = False
        else:
            c.mapping(f"{where}.triples", files, set(SPLITS))
            if not files:
                c.fail(f"{where}.triples", f"give at least one of {one_of(SPLITS)}")
            paths = {s: self.existing_file(f"{where}.triples.{s}", files[s], what="triples file")
                     for s in SPLITS if s in files}
            split = True
        source_type, target_type = (
            c.name(f"{where}.{key}", c.string(f"{where}.{key}", raw[key]), kind="node type")
            for key in ("source_type", "target_type"))
        return TripleSpec(files=paths, source_type=source_type, target_type=target_type, split=split)

    def table(self, where: str, raw) -> tuple[Path, str, tuple[str, ...] | None]:
        """The table's absolute path, its format (from `format:` or the suffix) and `header:`."""
        c = self.check
        path = self.existing_file(f"{where}.table", raw["table"], what="table")
        fmt = c.string(f"{where}.format", raw["format"]) if raw.get("format") is not None else None
        try:
            fmt = table_format(path, fmt)
        except InputError as e:
            c.fail(f"{where}.format" if fmt is not None else f"{where}.table", str(e))
        header = c.string_list(f"{where}.header", raw["header"]) if raw.get("header") is not None else None
        if header is not None and fmt not in ("csv", "tsv"):
            c.fail(f"{where}.header", f"only applies to csv/tsv tables, not {fmt}")
        return path, fmt, header

    def existing_file(self, where: str, value, *, what: str) -> Path:
        value = self.check.string(where, value)
        path = Path(value) if Path(value).is_absolute() else self.root / value
        if not path.is_file():
            self.check.fail(where, f"{what} {value!r} not found (looked for {path})")
        return path

    def check_unique_edge_types(self, edges) -> None:
        seen: dict[tuple, int] = {}
        for i, edge in enumerate(edges):
            if isinstance(edge, TableEdgeSpec):
                if edge.edge_type in seen:
                    self.check.fail(f"edges[{i}]", f"edge type {edge.edge_type} is declared twice "
                                    f"(also edges[{seen[edge.edge_type]}])")
                seen[edge.edge_type] = i
