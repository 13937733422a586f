"""Encoders for table cells: numbers (standardised), categories (one-hot), given vectors.

These learn their statistics with `fit(values)`; `spec()` carries them so brand-new items are
encoded exactly as the graph was.
"""
from __future__ import annotations

import json
import math
from typing import Any, Sequence

import numpy as np
import torch

from mmgraph.encoders.base import Encoder, register_encoder
from mmgraph.errors import InputError


def _cells(value: Any) -> list:
    if isinstance(value, (list, tuple, np.ndarray)):
        return list(value)
    return [value]


def _empty(cell: Any) -> bool:
    if cell is None:
        return True
    if isinstance(cell, float) and math.isnan(cell):
        return True
    return isinstance(cell, str) and not cell.strip()


def _to_float(cell: Any) -> float:
    try:
        return float(cell)
    except (TypeError, ValueError):
        raise InputError(f"not a number: {cell!r}") from None


class _FittedEncoder(Encoder):
    fitted_state = True

    def _require_fit(self) -> None:
        if not self.is_fitted:
            raise InputError(f"{self.modality} encoder used before fit(values)")


@register_encoder("numeric", "standard", default=True)
class NumericEncoder(_FittedEncoder):
    """One or more numeric columns, standardised with the mean/std seen by `fit`.

    A row whose cells are all empty is missing; an empty cell in a partly filled row takes the
    column's mean (0 after standardising). Constant columns get std 1.
    """

    def __init__(self) -> None:
        super().__init__()
        self.mean: list[float] | None = None
        self.std: list[float] | None = None

    def is_missing(self, value: Any) -> bool:
        return all(_empty(c) for c in _cells(value))

    def _row(self, value: Any) -> np.ndarray:
        return np.array([np.nan if _empty(c) else _to_float(c) for c in _cells(value)], dtype=np.float64)

    def fit(self, values: list) -> None:
        rows = []
        for i, v in enumerate(values):
            if not self.is_missing(v):
                try:
                    rows.append(self._row(v))
                except InputError as e:
                    raise InputError(f"row {i + 1}: {v!r}: {e}") from None
        if not rows:
            raise InputError("numeric feature has no non-empty value to fit on")
        width = {len(r) for r in rows}
        if len(width) != 1:
            raise InputError(f"numeric rows have different numbers of columns: {sorted(width)}")
        table = np.stack(rows)
        with np.errstate(all="ignore"):
            mean = np.nanmean(table, axis=0)
            std = np.nanstd(table, axis=0)
        mean = np.where(np.isnan(mean), 0.0, mean)
        std = np.where(np.isnan(std) | (std < 1e-12), 1.0, std)
        self.set_state({"mean": mean.tolist(), "std": std.tolist()})

    @property
    def is_fitted(self) -> bool:
        return self.mean is not None

    def state(self) -> dict:
        return {} if self.mean is None else {"mean": self.mean, "std": self.std}

    def set_state(self, state: dict) -> None:
        if state:
            self.mean = [float(m) for m in state["mean"]]
            self.std = [float(s) for s in state["std"]]
            self.dim = len(self.mean)

    def load(self, value: Any) -> np.ndarray:
        self._require_fit()
        row = self._row(value)
        if len(row) != self.dim:
            raise InputError(f"expected {self.dim} numeric columns, got {len(row)}")
        return np.where(np.isnan(row), self.mean, row)

    def encode(self, batch: list) -> torch.Tensor:
        x = torch.as_tensor(np.stack(batch), dtype=torch.float64)
        mean = torch.tensor(self.mean, dtype=torch.float64)
        std = torch.tensor(self.std, dtype=torch.float64)
        return ((x - mean) / std).float()


@register_encoder("categorical", "onehot", default=True)
class CategoricalEncoder(_FittedEncoder):
    """One-hot over the sorted vocabulary seen by `fit`; the last slot means "unseen"."""

    def __init__(self) -> None:
        super().__init__()
        self.vocab: list[str] | None = None
        self._index: dict[str, int] = {}

    @staticmethod
    def _key(value: Any) -> str:
        cells = _cells(value)
        return str(cells[0]).strip() if len(cells) == 1 else json.dumps([str(c) for c in cells])

    def fit(self, values: list) -> None:
        vocab = sorted({self._key(v) for v in values if not self.is_missing(v)})
        self.set_state({"vocab": vocab})

    @property
    def is_fitted(self) -> bool:
        return self.vocab is not None

    def state(self) -> dict:
        return {} if self.vocab is None else {"vocab": list(self.vocab)}

    def set_state(self, state: dict) -> None:
        if state:
            self.vocab = [str(v) for v in state["vocab"]]
            self._index = {v: i for i, v in enumerate(self.vocab)}
            self.dim = len(self.vocab) + 1

    def load(self, value: Any) -> int:
        self._require_fit()
        return self._index.get(self._key(value), len(self.vocab))

    def encode(self, batch: list) -> torch.Tensor:
        idx = torch.as_tensor(batch, dtype=torch.long)
        return torch.nn.functional.one_hot(idx, self.dim).float()


def parse_vector(value: Any) -> np.ndarray:
    """A list/array of numbers, or a string of numbers separated by spaces or commas."""
    if isinstance(value, str):
        text = value.strip().strip("[]()")
        parts = text.replace(",", " ").split()
        return np.array([_to_float(p) for p in parts], dtype=np.float32)
    try:
        return np.asarray(value, dtype=np.float32).reshape(-1)
    except (TypeError, ValueError):
        raise InputError(f"not a vector of numbers: {value!r}") from None


@register_encoder("vector", "raw", default=True)
class VectorEncoder(_FittedEncoder):
    """A precomputed vector per row, used as is; `fit` fixes `dim` from the first row."""

    def __init__(self) -> None:
        super().__init__()

    def is_missing(self, value: Any) -> bool:
        if isinstance(value, (list, tuple, np.ndarray)):
            return len(value) == 0 or bool(np.all(np.isnan(np.asarray(value, dtype=np.float64))))
        return super().is_missing(value)

    def fit(self, values: Sequence) -> None:
        for i, v in enumerate(values):
            if not self.is_missing(v):
                try:
                    self.set_state({"dim": int(parse_vector(v).shape[0])})
                except InputError as e:
                    raise InputError(f"row {i + 1}: {v!r}: {e}") from None
                return
        raise InputError("vector feature has no non-empty row to take its length from")

    @property
    def is_fitted(self) -> bool:
        return self.dim > 0

    def state(self) -> dict:
        return {"dim": self.dim} if self.dim else {}

    def set_state(self, state: dict) -> None:
        if state:
            self.dim = int(state["dim"])

    def load(self, value: Any) -> np.ndarray:
        self._require_fit()
        vec = parse_vector(value)
        if vec.shape[0] != self.dim:
            raise InputError(f"vector has {vec.shape[0]} numbers, expected {self.dim} "
                             "(the first row's length)")
        if not np.all(np.isfinite(vec)):
            raise InputError("vector holds NaN or infinite numbers")
        return vec

    def encode(self, batch: list) -> torch.Tensor:
        return torch.as_tensor(np.stack(batch), dtype=torch.float32)
