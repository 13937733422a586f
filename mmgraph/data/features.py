"""Node features: raw cells from a node table -> encoder inputs -> `[N, dim]` tensors + masks.

Preparing the values (cheap: column look-ups, number parsing, npy loading) is separate from
encoding them (expensive), so every table problem is reported before any model runs.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mmgraph.data.manifest import FeatureSpec, Manifest
from mmgraph.data.naming import network_view_name
from mmgraph.data.tables import Table
from mmgraph.errors import InputError

log = logging.getLogger(__name__)

MEDIA = ("image", "audio")


@dataclass
class PreparedFeature:
    """One feature's encoder inputs in table row order (None = missing)."""

    node_type: str
    name: str
    spec: FeatureSpec
    table: Path
    values: list[Any]
    encoder_field: str  # where the encoder name came from, for errors (e.g. "encoders.text")
    encoder_name: str


@dataclass
class EncodedColumn:
    """A feature ready for the graph, plus what the build report says about it."""

    x: Tensor  # [N, dim] float32
    mask: Tensor  # [N] bool
    views: Tensor | None  # [N, V, dim] or None
    info: dict  # g.mmgraph["features"][type][name]: modality, encoder, dim, spec
    bad_files: list[dict] = field(default_factory=list)


def prepare_features(manifest: Manifest, node_type: str, name: str, spec: FeatureSpec,
                     table: Table) -> list[PreparedFeature]:
    """The feature's encoder inputs: one column, or for small images left to the default encoder two,
    `name` as pixels and `name_imagenet` (`network_view_name`) through the packaged ImageNet network."""
    values = feature_values(spec, table, manifest.root, where=f"{manifest.label}: nodes.{node_type}.features.{name}")

    def column(column_name: str, encoder_field: str, encoder_name: str) -> PreparedFeature:
        return PreparedFeature(node_type, column_name, spec, table.path, values, encoder_field, encoder_name)

    if spec.encoder is not None:
        return [column(name, f"nodes.{node_type}.features.{name}.encoder", spec.encoder)]
    encoder_field = f"encoders.{spec.modality}"
    encoder_name = manifest.encoders.get(spec.modality, "default")
    side = median_image_side(values) if spec.modality == "image" and encoder_name == "default" else None
    if side is None or side > SMALL_IMAGE_PX:
        return [column(name, encoder_field, encoder_name)]
    from mmgraph.encoders import default_encoder_name

    log.info("%s.%s: images are small (median side %d px): encoding them as pixels (encoder: pixels), and "
             "through the ImageNet network as %s beside them; set `encoder:` on the feature to choose one",
             node_type, name, side, network_view_name(name))
    return [column(name, encoder_field, "pixels"),
            column(network_view_name(name), encoder_field, default_encoder_name("image"))]


# Images whose median longer side is at most this many pixels (glyphs, icons, scanned digits) are
# encoded as their own pixels (the feature, and its kNN relation) and, beside them, through the
# ImageNet network, which sees little in them alone once upscaled: demo digits, 8x8 px,
# image-shows-word validation MRR .902 EfficientNet only, .940 with the pixels beside it.
SMALL_IMAGE_PX = 32


def median_image_side(paths: list, *, sample: int = 16) -> int | None:
    """The median longer side, in pixels, of the first `sample` readable images (None if none is)."""
    from PIL import Image

    sides = []
    for path in [p for p in paths if p is not None][:sample]:
        try:
            with Image.open(path) as image:   # reads the header only
                sides.append(max(image.size))
        except OSError:
            continue   # missing or bad files are reported by the encoder itself
    return sorted(sides)[len(sides) // 2] if sides else None


def feature_values(spec: FeatureSpec, table: Table, root: Path, *, where: str) -> list[Any]:
    """A feature's cells as its encoder's `load` takes them; media paths resolved against `root`.

    Used for the graph's own tables and, by `predict --items`, for tables of brand-new items.
    """
    if spec.npy is not None:
        return _npy_rows(spec.npy, table)
    if spec.modality == "numeric":
        columns = [table.column(c, field=f"{where}.columns") for c in spec.columns]
        return [_numbers(table.path, row, spec.columns, cells) for row, cells in enumerate(zip(*columns), start=1)]
    cells = table.column(spec.column, field=f"{where}.column")
    if spec.modality in MEDIA:
        return [None if c is None else str(_resolve(root, c)) for c in cells]
    if spec.modality == "vector":
        return _vectors(table.path, spec.column, cells)
    return list(cells)


def make_feature_encoder(manifest: Manifest, feature: PreparedFeature, device: torch.device):
    """Build (and for numeric/categorical, fit) the feature's encoder."""
    from mmgraph.encoders import make_encoder

    try:
        encoder = make_encoder(feature.spec.modality, feature.encoder_name)
    except InputError as e:
        raise InputError(f"{manifest.label}: {feature.encoder_field}: {e}") from e
    if feature.spec.modality in ("numeric", "categorical"):
        if all(v is None for v in feature.values):
            raise InputError(f"{feature.table}: {feature.spec.modality} feature "
                             f"{feature.node_type}.{feature.name} has no values")
        encoder.fit(feature.values)
    return encoder.to(device)


def encode_feature(manifest: Manifest, feature: PreparedFeature, num_nodes: int, *, device: torch.device,
                   cache, skip_bad: bool, num_workers: int, batch_size: int) -> EncodedColumn:
    """Encode one feature; rows past the table (featureless nodes from triples) get mask False."""
    from mmgraph.encoders import BadItemError
    from mmgraph.encoders.sharded import encode_values_sharded

    encoder = make_feature_encoder(manifest, feature, device)
    label = f"{feature.node_type}.{feature.name}"
    field_desc = f"field {label} ({_source(feature.spec)})"
    start = time.perf_counter()
    try:
        out = encode_values_sharded(encoder, feature.values, batch_size=batch_size, num_workers=num_workers,
                                    cache=cache, skip_bad=skip_bad, desc=label, views=feature.spec.augment)
    except BadItemError as e:
        raise InputError(f"{e.value}: cannot decode ({e.reason}); table {feature.table}, "
                         f"row {e.row_index + 1}, {field_desc}") from e
    except InputError as e:
        raise InputError(f"{feature.table}: {field_desc}: {e}") from e
    rows = len(feature.values)
    x, mask, views = _pad(out.x.float().cpu(), num_nodes), _pad(out.mask.bool().cpu(), num_nodes), out.views
    if views is not None:
        views = _pad(views.float().cpu(), num_nodes)
    bad_files = [{"file": str(value), "table": str(feature.table), "row": row + 1, "field": label,
                  "reason": reason} for row, value, reason in out.bad]
    log.info("encoded %s: %d rows, %d present, %d bad in %.2fs", label, rows, int(mask.sum()), len(bad_files),
             time.perf_counter() - start)
    info = {"modality": feature.spec.modality, "encoder": encoder.identity, "dim": int(x.size(1)),
            "spec": encoder.spec()}
    return EncodedColumn(x=x, mask=mask, views=views, info=info, bad_files=bad_files)


def _pad(t: Tensor, n: int) -> Tensor:
    """Zero rows (mask False) for the featureless nodes that follow the table rows."""
    if t.size(0) == n:
        return t
    return torch.cat([t, t.new_zeros((n - t.size(0),) + tuple(t.shape[1:]))])


def _source(spec: FeatureSpec) -> str:
    if spec.npy is not None:
        return f"npy {spec.npy.name}"
    if spec.columns is not None:
        return "columns " + ", ".join(spec.columns)
    return f"column {spec.column}"


def _resolve(root: Path, cell: str) -> Path:
    path = Path(cell).expanduser()
    return path if path.is_absolute() else root / path


def _numbers(path: Path, row: int, columns: tuple[str, ...], cells: tuple) -> list[float] | None:
    """A numeric row as floats (NaN where empty); None when every cell is empty."""
    if all(c is None for c in cells):
        return None
    out = []
    for column, cell in zip(columns, cells):
        try:
            out.append(float("nan") if cell is None else float(cell))
        except ValueError:
            raise InputError(f"{path}: row {row}: column {column!r}: not a number: {cell!r}") from None
    return out


def _vectors(path: Path, column: str, cells: list) -> list[np.ndarray | None]:
    """Space- (or comma-) separated numbers per cell; every row must have the same length."""
    out: list[np.ndarray | None] = []
    dim, first_row = None, None
    for row, cell in enumerate(cells, start=1):
        if cell is None:
            out.append(None)
            continue
        try:
            vec = np.array(cell.strip("[]()").replace(",", " ").split(), dtype=np.float32)
        except ValueError:
            raise InputError(f"{path}: row {row}: column {column!r}: "
                             f"not a list of numbers: {cell[:60]!r}") from None
        if dim is None:
            dim, first_row = vec.size, row
        elif vec.size != dim:
            raise InputError(f"{path}: row {row}: column {column!r}: vector has {vec.size} numbers, "
                             f"row {first_row} has {dim}")
        out.append(None if np.isnan(vec).all() else vec)
    return out


def _npy_rows(path: Path, table: Table) -> list[np.ndarray | None]:
    """Rows of a `[rows, dim]` .npy matrix in table order; an all-NaN row is missing."""
    try:
        matrix = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: cannot read npy file: {e}") from e
    if matrix.ndim == 1:
        matrix = matrix[:, None]
    if matrix.ndim != 2 or not np.issubdtype(matrix.dtype, np.number):
        raise InputError(f"{path}: expected a numeric [rows, dim] matrix, got {matrix.dtype} {matrix.shape}")
    if matrix.shape[0] != table.num_rows:
        raise InputError(f"{path}: has {matrix.shape[0]} rows but table {table.path} has {table.num_rows}")
    matrix = matrix.astype(np.float32, copy=False)
    missing = np.isnan(matrix).all(axis=1)
    return [None if missing[i] else matrix[i] for i in range(matrix.shape[0])]
