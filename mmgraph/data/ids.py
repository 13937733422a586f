"""Node ids of one node type: table rows first, then ids that only triples mention."""
from __future__ import annotations

from pathlib import Path

from mmgraph.data.tables import Table
from mmgraph.errors import InputError


class NodeIds:
    """Maps string ids to row positions for one node type.

    Positions `0 .. table_rows-1` are the node table's rows in order; ids added later with
    `get_or_add` (ids used in `triples:` that no table lists) follow them and have no features.
    """

    def __init__(self, node_type: str, *, table: Path | None = None):
        self.node_type = node_type
        self.table = table
        self.ids: list[str] = []
        self.position: dict[str, int] = {}
        self.table_rows = 0

    @classmethod
    def from_table(cls, node_type: str, table: Table, column: str, *, field: str) -> "NodeIds":
        """Ids from a table column; an empty, multi-line or duplicate id is an InputError."""
        ids = cls(node_type, table=table.path)
        for row, node_id in enumerate(table.column(column, field=field), start=1):
            if node_id is None:
                raise InputError(f"{table.path}: row {row}: empty id in column {column!r}")
            if "\n" in node_id or "\r" in node_id:
                raise InputError(f"{table.path}: row {row}: id {node_id!r} in column {column!r} spans lines")
            if node_id in ids.position:
                raise InputError(f"{table.path}: duplicate id {node_id!r} in column {column!r} "
                                 f"(rows {ids.position[node_id] + 1} and {row})")
            ids.position[node_id] = len(ids.ids)
            ids.ids.append(node_id)
        ids.table_rows = len(ids.ids)
        return ids

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def num_featureless(self) -> int:
        """How many nodes came from triples only (after the table rows, no features)."""
        return len(self.ids) - self.table_rows

    def table_position(self, node_id: str) -> int | None:
        """The row of `node_id` in the node table, or None when the table does not list it."""
        position = self.position.get(node_id)
        return position if position is not None and position < self.table_rows else None

    def get_or_add(self, node_id: str) -> int:
        """The position of `node_id`, appending it as a featureless node when it is new."""
        position = self.position.get(node_id)
        if position is None:
            position = self.position[node_id] = len(self.ids)
            self.ids.append(node_id)
        return position
