"""Edges from relation tables and from `head<TAB>relation<TAB>tail` triple files."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from mmgraph.data.ids import NodeIds
from mmgraph.data.manifest import TableEdgeSpec, TripleSpec
from mmgraph.data.schema import SPLITS
from mmgraph.data.tables import read_table
from mmgraph.errors import InputError

SPLIT_CODES = {name: code for code, name in enumerate(SPLITS)}  # train 0, valid 1, test 2


@dataclass(frozen=True)
class EdgeSet:
    """One edge type's edges: `edge_index [2, E]` row positions, optional `split [E]` (0/1/2)."""

    edge_index: Tensor
    split: Tensor | None = None

    @property
    def num_edges(self) -> int:
        return self.edge_index.size(1)


def table_edges(spec: TableEdgeSpec, ids: dict[str, NodeIds], *, where: str) -> EdgeSet:
    """Edges listed one per row of a table; every id must be a row of its node table.

    `where` is the manifest label and field path (e.g. `manifest.yaml: edges[0]`) for errors
    about the manifest's columns.
    """
    table = read_table(spec.table, format=spec.format, header=list(spec.header) if spec.header else None)
    ends = []
    for name, end in (("source", spec.source), ("target", spec.target)):
        cells = table.column(end.column, field=f"{where}.{name}.column")
        ends.append(_positions(table.path, end.column, cells, ids[end.type]))
    split = None
    if spec.split is not None:
        split = _split_codes(table.path, spec.split, table.column(spec.split, field=f"{where}.split"))
    return EdgeSet(torch.tensor(ends, dtype=torch.long).reshape(2, -1), split)


def _positions(path: Path, column: str, cells: list, node_ids: NodeIds) -> list[int]:
    out = []
    for row, node_id in enumerate(cells, start=1):
        if node_id is None:
            raise InputError(f"{path}: row {row}: empty id in column {column!r}")
        position = node_ids.table_position(node_id)
        if position is None:
            raise InputError(f"{path}: row {row}: {column} {node_id!r} is not an id of node type "
                             f"{node_ids.node_type!r} (not listed in {node_ids.table})")
        out.append(position)
    return out


def _split_codes(path: Path, column: str, cells: list) -> Tensor:
    codes = []
    for row, value in enumerate(cells, start=1):
        code = SPLIT_CODES.get(value) if value is not None else None
        if code is None:
            raise InputError(f"{path}: row {row}: split column {column!r} holds {value!r} "
                             f"(expected train, valid or test)")
        codes.append(code)
    return torch.tensor(codes, dtype=torch.long)


def triple_edges(spec: TripleSpec, ids: dict[str, NodeIds]) -> dict[tuple[str, str, str], EdgeSet]:
    """One edge type per distinct relation, in order of first appearance.

    Heads and tails that no node table lists are appended to their type as featureless nodes
    (`ids` gains a `NodeIds` for a type that exists only through triples).
    """
    heads = ids.setdefault(spec.source_type, NodeIds(spec.source_type))
    tails = ids.setdefault(spec.target_type, NodeIds(spec.target_type))
    by_relation: dict[str, tuple[list[int], list[int], list[int]]] = {}
    for split_name, path in spec.files.items():
        code = SPLIT_CODES[split_name]
        for head, relation, tail in _read_triples(path):
            src, dst, split = by_relation.setdefault(relation, ([], [], []))
            src.append(heads.get_or_add(head))
            dst.append(tails.get_or_add(tail))
            split.append(code)
    out = {}
    for relation, (src, dst, split) in by_relation.items():
        edge_index = torch.tensor([src, dst], dtype=torch.long)
        out[(spec.source_type, relation, spec.target_type)] = EdgeSet(
            edge_index, torch.tensor(split, dtype=torch.long) if spec.split else None
        )
    return out


def _read_triples(path: Path):
    """Yields (head, relation, tail) per line; blank lines are skipped."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            for line_no, line in enumerate(f, start=1):
                line = line.rstrip("\r\n")
                if not line.strip():
                    continue
                parts = [p.strip() for p in line.split("\t")]
                if len(parts) != 3 or not all(parts):
                    raise InputError(f"{path}: line {line_no}: expected head<TAB>relation<TAB>tail, "
                                     f"got {line[:80]!r}")
                if "|" in parts[1]:
                    raise InputError(f"{path}: line {line_no}: relation {parts[1]!r} contains '|'")
                yield parts[0], parts[1], parts[2]
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    except OSError as e:
        raise InputError(f"{path}: cannot read triples: {e}") from e
