"""The encoder interface, its registry, and the errors and results the pipeline returns.

An encoder turns one raw value (a media path, a string, a list of numbers) into a fixed-size
float32 vector in two steps: `load` (decode + preprocess one value; runs in worker threads) and
`encode` (a batch of loaded values -> `[B, dim]`; runs on the encoder's device). Encoders are
registered by `(modality, name)` with `@register_encoder`; adding one is one file.
"""
from __future__ import annotations

import difflib
import hashlib
import importlib
import json
import os
from pathlib import Path
from typing import Any, Callable, ClassVar, NamedTuple

import torch

from mmgraph.errors import InputError

MODALITIES = ("image", "audio", "text", "numeric", "categorical", "vector")

# Modules that hold the built-in encoders; imported on first use so `import mmgraph.encoders`
# stays light (transformers, efficientnet, scipy load only when an encoder needs them).
_BUILTIN_MODULES = (
    "mmgraph.encoders.tabular",
    "mmgraph.encoders.image",
    "mmgraph.encoders.pixels",
    "mmgraph.encoders.audio",
    "mmgraph.encoders.speech",
    "mmgraph.encoders.text",
    "mmgraph.encoders.hf",
)
_REGISTRY: dict[tuple[str, str], type["Encoder"]] = {}
_DEFAULTS: dict[str, str] = {}
# Name used for "a local folder holding a Hugging Face model" in each modality.
HF_FOLDER_NAME = "hf-folder"


class BadItemError(InputError):
    """A value that exists but cannot be encoded (undecodable file), with its position.

    `row_index` is the 0-based position in the values given to `encode_values`, i.e. the
    table's data row `row_index + 1`.
    """

    def __init__(self, row_index: int, value: Any, reason: str):
        super().__init__(f"row {row_index + 1}: cannot decode {value}: {reason}")
        self.row_index = row_index
        self.value = value
        self.reason = reason


class EncodedFeature(NamedTuple):
    """What `encode_values` returns for one feature column."""

    x: torch.Tensor  # [N, dim] float32, zeros where missing
    mask: torch.Tensor  # [N] bool, False where missing or bad
    bad: list  # [(row_index, value, reason)] for files skipped with skip_bad
    views: torch.Tensor | None = None  # [N, V, dim] augmented views, None when V == 0


class Encoder:
    """Base class: subclasses set `name`, `modality`, and implement `load` and `encode`.

    Options are keyword arguments of `__init__` and must be JSON-able: `spec()` records them
    with any fitted state so that `encoder_from_spec(spec)` rebuilds an identical encoder.
    """

    name: ClassVar[str] = ""
    modality: ClassVar[str] = ""
    #: values are paths to media files (missing file = missing value; cache keys hash bytes)
    media: ClassVar[bool] = False
    #: outputs depend on statistics from `fit` (and so are not worth caching)
    fitted_state: ClassVar[bool] = False

    def __init__(self, **options: Any):
        self.options = dict(options)
        self.device = torch.device("cpu")
        self.dim: int = 0

    # -- what subclasses implement -------------------------------------------------------
    def load(self, value: Any) -> Any:
        """Decode + preprocess one raw value. Thread-safe. DecodeError for a bad file."""
        raise NotImplementedError

    def encode(self, batch: list) -> torch.Tensor:
        """Loaded values -> `[B, dim]` float32 on CPU."""
        raise NotImplementedError

    def augment(self, item: Any, generator: torch.Generator) -> Any:
        """One random view of a loaded item (for `views > 0`); deterministic given `generator`."""
        raise InputError(f"{self.modality} encoder {self.name!r} does not support augmentation views")

    def fit(self, values: list) -> None:
        """Learn statistics (numeric/categorical/vector); a no-op for pretrained encoders."""

    @property
    def is_fitted(self) -> bool:
        return True

    def state(self) -> dict:
        """Fitted statistics as JSON-able data (empty for stateless encoders)."""
        return {}

    def set_state(self, state: dict) -> None:
        if state:
            raise InputError(f"encoder {self.name!r} has no fitted state, got keys {sorted(state)}")

    def is_missing(self, value: Any) -> bool:
        if value is None:
            return True
        if isinstance(value, float) and value != value:  # NaN from a table
            return True
        if isinstance(value, str) and not value.strip():
            return True
        if self.media and not os.path.isfile(str(value)):  # os.path: 3x faster than pathlib here
            return True
        return False

    def fingerprint(self) -> str:
        """Weights fingerprint for `identity`; empty for encoders without weights."""
        return ""

    def settings(self) -> dict:
        """Preprocessing settings that change the output (part of `identity`)."""
        return dict(self.options)

    # -- shared behaviour ----------------------------------------------------------------
    @property
    def identity(self) -> str:
        parts = [f"{self.modality}/{self.name}"]
        fp = self.fingerprint()
        if fp:
            parts.append(fp)
        parts.append(json.dumps(self.settings(), sort_keys=True, separators=(",", ":")))
        state = self.state()
        if state:
            blob = json.dumps(state, sort_keys=True).encode()
            parts.append("state=" + hashlib.sha256(blob).hexdigest()[:16])
        return "|".join(parts)

    def to(self, device: str | torch.device) -> "Encoder":
        self.device = torch.device(device)
        return self

    def spec(self) -> dict:
        return {
            "modality": self.modality,
            "name": self.name,
            "options": dict(self.options),
            "state": self.state(),
            "dim": self.dim,
        }

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}({opts}{', ' if opts else ''}dim={self.dim})"


def register_encoder(modality: str, name: str, *, default: bool = False) -> Callable[[type], type]:
    """Class decorator: make `make_encoder(modality, name)` build this class."""
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}")

    def wrap(cls: type) -> type:
        cls.name = name
        cls.modality = modality
        _REGISTRY[(modality, name)] = cls
        if default:
            _DEFAULTS[modality] = name
        return cls

    return wrap


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def registered_encoders() -> dict[tuple[str, str], type[Encoder]]:
    """Every registered `(modality, name) -> class`, built-ins included."""
    _load_builtins()
    return dict(_REGISTRY)


def default_encoder_name(modality: str) -> str:
    _load_builtins()
    return _DEFAULTS[modality]


def _check_modality(modality: str) -> None:
    if modality not in MODALITIES:
        close = difflib.get_close_matches(str(modality), MODALITIES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise InputError(f"unknown modality {modality!r} (expected one of {', '.join(MODALITIES)}){hint}")


def make_encoder(modality: str, name_or_path: str | os.PathLike = "default", **options: Any) -> Encoder:
    """Build an encoder by registered name, or from a local folder holding a Hugging Face model.

    >>> enc = make_encoder("text")                  # all-MiniLM-L6-v2, 384-d
    >>> enc = make_encoder("image", "./my-clip")    # a saved CLIP folder
    """
    _check_modality(modality)
    _load_builtins()
    name = str(name_or_path) if name_or_path is not None else "default"
    if (modality, name) not in _REGISTRY and name == "default":
        name = _DEFAULTS[modality]
    if (modality, name) in _REGISTRY:
        return _REGISTRY[(modality, name)](**options)
    if Path(name).expanduser().is_dir() and (modality, HF_FOLDER_NAME) in _REGISTRY:
        path = str(Path(name).expanduser().resolve())
        return _REGISTRY[(modality, HF_FOLDER_NAME)](path=path, **options)
    known = sorted(n for m, n in _REGISTRY if m == modality and n != HF_FOLDER_NAME)
    hint = ""
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        hint = f"; did you mean {close[0]!r}?"
    raise InputError(
        f"unknown {modality} encoder {name!r}: not a registered name ({', '.join(known)}) "
        f"and not an existing folder holding a Hugging Face model{hint}"
    )


# Names that graphs built before a rename still carry in their specs.
_RENAMED = {("audio", "default"): "signal"}   # the signal-processing embedding, the default until 2026-12-02


def encoder_from_spec(spec: dict) -> Encoder:
    """Rebuild the encoder `spec()` described, fitted statistics included."""
    try:
        modality, name = spec["modality"], spec["name"]
    except (KeyError, TypeError) as e:
        raise InputError(f"encoder spec must have 'modality' and 'name', got {spec!r}") from e
    _check_modality(modality)
    _load_builtins()
    name = _RENAMED.get((modality, name), name)
    if (modality, name) not in _REGISTRY:
        raise InputError(f"encoder spec names unknown {modality} encoder {name!r}")
    enc = _REGISTRY[(modality, name)](**spec.get("options", {}))
    enc.set_state(spec.get("state", {}))
    return enc


_FINGERPRINTS: dict[tuple[str, int, int], str] = {}


def file_fingerprint(path: str | os.PathLike) -> str:
    """`size:sha256[:16]` of a weights file, computed once per (path, size, mtime)."""
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if key not in _FINGERPRINTS:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _FINGERPRINTS[key] = f"{st.st_size}:{h.hexdigest()[:16]}"
    return _FINGERPRINTS[key]
