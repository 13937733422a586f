"""The manifest's vocabulary (valid keys per level) and a checker that names the field path."""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NoReturn

from mmgraph.data.suggest import did_you_mean, one_of
from mmgraph.errors import InputError

MODALITIES = ("image", "audio", "text", "numeric", "categorical", "vector")
SPLITS = ("train", "valid", "test")

TOP_KEYS = frozenset({"name", "encoders", "nodes", "edges"})
NODE_KEYS = frozenset({"table", "id", "features", "format", "header", "knn"})
FEATURE_KEYS = frozenset({"modality", "column", "columns", "npy", "encoder", "augment"})
KNN_KEYS = frozenset({"feature", "k"})
TABLE_EDGE_KEYS = frozenset({"relation", "table", "source", "target", "split", "format", "header"})
ENDPOINT_KEYS = frozenset({"type", "column"})
TRIPLE_KEYS = frozenset({"triples", "source_type", "target_type"})

# names become file names (ids/TYPE.txt), "|"-joined edge keys and HeteroData attribute names
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_RESERVED_TYPES = frozenset({"mmgraph"})
_RESERVED_FEATURES = frozenset({"num_nodes", "edge_index", "n_id", "batch", "ptr"})


class Checker:
    """Raises one InputError `LABEL: FIELD: message` for the first problem found."""

    def __init__(self, label: str):
        self.label = label

    def fail(self, where: str, message: str) -> NoReturn:
        prefix = f"{self.label}: {where}: " if where else f"{self.label}: "
        raise InputError(prefix + message)

    def mapping(self, where: str, value, keys: frozenset | set | None, *, required: tuple = ()) -> None:
        """`value` is a mapping whose keys are all in `keys` (None: any) and include `required`."""
        if not isinstance(value, Mapping):
            self.fail(where or "top level", f"expected a mapping, got {type(value).__name__}")
        for key in value:
            if not isinstance(key, str):
                self.fail(where or "top level", f"key {key!r} is not a string")
            if keys is not None and key not in keys:
                self.fail(_join(where, key), f"unknown key {key!r} (expected one of {one_of(sorted(keys))})"
                          f"{did_you_mean(key, keys)}")
        for key in required:
            if key not in value or value[key] is None:
                self.fail(_join(where, key), "missing required key")

    def string(self, where: str, value) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.fail(where, f"expected a string, got {type(value).__name__}")
        value = str(value).strip()
        if not value:
            self.fail(where, "must not be empty")
        return value

    def string_list(self, where: str, value) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not value:
            self.fail(where, "expected a non-empty list of column names")
        return tuple(self.string(f"{where}[{i}]", v) for i, v in enumerate(value))

    def integer(self, where: str, value, *, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(where, f"expected an integer, got {value!r}")
        if value < minimum:
            self.fail(where, f"must be at least {minimum}, got {value}")
        return value

    def name(self, where: str, value, *, kind: str) -> str:
        """A node type, relation or feature name: letters, digits, `_ . -`; not reserved."""
        if not isinstance(value, str) or not _NAME.match(value):
            self.fail(where, f"invalid {kind} name {value!r} (use letters, digits, '_', '.', '-')")
        if kind == "feature" and (value in _RESERVED_FEATURES or value.endswith(("_mask", "_views"))):
            self.fail(where, f"feature name {value!r} is reserved "
                      "(names ending in _mask/_views and num_nodes, edge_index, n_id, batch, ptr)")
        if kind == "node type" and value in _RESERVED_TYPES:
            self.fail(where, f"node type name {value!r} is reserved")
        return value


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key
