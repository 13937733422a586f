"""Read node and edge tables (csv, tsv, jsonl, parquet) as columns of strings.

Every cell comes back as a stripped string, or None where it is empty (or NaN/null in jsonl and
parquet). Ids are compared as strings, so `7` in a jsonl file and `"7"` in a csv file match.
Rows are numbered from 1, header not counted, in every error message.
"""
from __future__ import annotations

import csv
import gzip
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from mmgraph.data.suggest import did_you_mean
from mmgraph.errors import InputError

FORMATS = ("csv", "tsv", "jsonl", "parquet")
_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
             ".parquet": "parquet", ".pq": "parquet"}

Cell = str | None


@dataclass(frozen=True)
class Table:
    """A table held column by column: `columns[name][row_index]` is a string or None."""

    path: Path
    columns: dict[str, list[Cell]]
    num_rows: int

    def column(self, name: str, *, field: str | None = None) -> list[Cell]:
        """The cells of one column; a clear InputError naming the table when it is absent."""
        if name not in self.columns:
            where = f"{field}: " if field else ""
            raise InputError(
                f"{where}{self.path}: no column {name!r} (columns: {', '.join(self.columns) or 'none'})"
                f"{did_you_mean(name, self.columns)}"
            )
        return self.columns[name]


def table_format(path: str | os.PathLike, format: str | None = None) -> str:
    """The format named by `format`, else by the suffix (a trailing `.gz` is looked through)."""
    if format is not None:
        if format not in FORMATS:
            raise InputError(f"{path}: unknown table format {format!r} "
                             f"(expected one of {', '.join(FORMATS)})")
        return format
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in _SUFFIXES:
        return _SUFFIXES[suffixes[-1]]
    raise InputError(
        f"{path}: cannot tell the table format from the file name; "
        f"use a .csv/.tsv/.jsonl/.parquet name or set format: csv|tsv|jsonl|parquet"
    )


def read_table(path: str | os.PathLike, *, format: str | None = None,
               header: list[str] | None = None) -> Table:
    """Read a table; `header` gives the column names of a csv/tsv file that has no header row."""
    path = Path(path)
    fmt = table_format(path, format)
    if not path.is_file():
        raise InputError(f"{path}: table not found")
    if header is not None and fmt not in ("csv", "tsv"):
        raise InputError(f"{path}: header: only applies to csv/tsv tables, not {fmt}")
    try:
        if fmt == "parquet":
            columns = _read_parquet(path)
        elif fmt == "jsonl":
            columns = _read_jsonl(path)
        else:
            columns = _read_delimited(path, "\t" if fmt == "tsv" else ",", header)
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    except (OSError, EOFError, csv.Error) as e:
        raise InputError(f"{path}: cannot read {fmt} table: {e}") from e
    num_rows = len(next(iter(columns.values()))) if columns else 0
    return Table(path=path, columns=columns, num_rows=num_rows)


def to_cell(value) -> Cell:
    """One raw value (from csv, json or parquet) -> stripped string or None."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return None if math.isnan(value) else repr(value)
    if isinstance(value, (int,)):
        return str(value)
    if isinstance(value, (list, tuple)):
        # a list of numbers is a vector feature: space-separated, as in a csv cell
        cells = [to_cell(v) for v in value]
        return " ".join("nan" if c is None else c for c in cells) or None
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value).strip() or None


def _open_text(path: Path):
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _read_delimited(path: Path, delimiter: str, header: list[str] | None) -> dict[str, list[Cell]]:
    # tsv files in ML data rarely quote and often contain stray quotes in text, so tsv is unquoted
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    with _open_text(path) as f:
        reader = csv.reader(f, delimiter=delimiter, quoting=quoting)
        names = list(header) if header is not None else None
        rows: list[list[str]] = []
        for fields in reader:
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue  # blank line
            if names is None:
                names = [name.strip() for name in fields]
                continue
            rows.append(fields)
    if names is None:
        raise InputError(f"{path}: empty table (no header row)")
    _check_names(path, names)
    columns: dict[str, list[Cell]] = {name: [] for name in names}
    for number, fields in enumerate(rows, start=1):
        if len(fields) != len(names):
            raise InputError(
                f"{path}: row {number} has {len(fields)} fields, expected {len(names)} ({', '.join(names)})"
            )
        for name, value in zip(names, fields):
            columns[name].append(to_cell(value))
    return columns


def _read_jsonl(path: Path) -> dict[str, list[Cell]]:
    columns: dict[str, list[Cell]] = {}
    number = 0
    with _open_text(path) as f:
        for line in f:
            if not line.strip():
                continue
            number += 1
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{path}: row {number}: invalid JSON ({e.msg})") from e
            if not isinstance(record, dict):
                raise InputError(f"{path}: row {number}: expected a JSON object, got {type(record).__name__}")
            for name in record:
                if name not in columns:  # a key first seen late is missing in earlier rows
                    columns[name] = [None] * (number - 1)
            for name, cells in columns.items():
                cells.append(to_cell(record.get(name)))
    return columns


def _read_parquet(path: Path) -> dict[str, list[Cell]]:
    import pyarrow.parquet as pq

    try:
        data = pq.read_table(path).to_pydict()
    except Exception as e:  # pyarrow raises its own ArrowInvalid etc. for broken files
        raise InputError(f"{path}: cannot read parquet table: {e}") from e
    return {str(name): [to_cell(v) for v in values] for name, values in data.items()}


def _check_names(path: Path, names: list[str]) -> None:
    seen = set()
    for position, name in enumerate(names, start=1):
        if not name:
            raise InputError(f"{path}: header column {position} has no name")
        if name in seen:
            raise InputError(f"{path}: header names column {name!r} twice")
        seen.add(name)
