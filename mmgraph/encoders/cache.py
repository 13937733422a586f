"""A content-addressed store of encoded rows, so a rebuild re-encodes only what changed.

One shard file per encoder identity (`<sha256(identity)>.pt`) holds every row that encoder has
produced, keyed by the sha256 of the file's bytes (media) or of the value (text). A rebuild
reads one file per feature instead of one per row, and writes it back atomically.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from mmgraph.errors import InputError
from mmgraph.utils import atomic_torch_save


def content_key(value: Any, *, media: bool) -> str:
    """sha256 of a media file's bytes, or of the value itself."""
    h = hashlib.sha256()
    if media:
        with open(value, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    else:
        h.update(json.dumps(value, sort_keys=True, default=str).encode("utf-8"))
    return h.hexdigest()


class FeatureCache:
    """Encoded rows on disk under `directory`, one shard per encoder identity.

    Example::

        cache = FeatureCache("~/.cache/mmgraph")
        feat = encode_values(enc, paths, cache=cache)   # a second run reads the shard
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory).expanduser()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(f"--cache {directory}: cannot create the cache folder: {e}") from e
        self.hits = 0
        self.misses = 0
        # In-memory copy of shards read or written by this object: {path: (mtime, shard)}.
        self._loaded: dict[Path, tuple[int, dict]] = {}

    def shard_path(self, identity: str) -> Path:
        return self.directory / f"{hashlib.sha256(identity.encode('utf-8')).hexdigest()[:32]}.pt"

    def _read(self, identity: str) -> dict:
        path = self.shard_path(identity)
        if not path.exists():
            return {"identity": identity, "keys": [], "x": None, "index": {}}
        mtime = path.stat().st_mtime_ns
        if path in self._loaded and self._loaded[path][0] == mtime:
            return self._loaded[path][1]
        try:
            raw = torch.load(path, map_location="cpu", weights_only=True)
            if raw.get("identity") != identity:  # a hash collision or a foreign file: ignore it
                return {"identity": identity, "keys": [], "x": None, "index": {}}
            shard = {"identity": identity, "keys": list(raw["keys"]), "x": raw["x"]}
        except Exception:  # a damaged shard is only a cache miss, never a failed build
            return {"identity": identity, "keys": [], "x": None, "index": {}}
        shard["index"] = {k: i for i, k in enumerate(shard["keys"])}
        self._loaded[path] = (mtime, shard)
        return shard

    def lookup(self, identity: str, keys: list[str]) -> tuple[list[int], torch.Tensor | None]:
        """Which of `keys` are cached: (their positions in `keys`, their rows [len(hits), dim])."""
        shard = self._read(identity)
        index = shard["index"]
        hits = [pos for pos, k in enumerate(keys) if k in index]
        self.hits += len(hits)
        self.misses += len(keys) - len(hits)
        if not hits:
            return [], None
        rows = torch.tensor([index[keys[pos]] for pos in hits])
        return hits, shard["x"].index_select(0, rows)

    def store(self, identity: str, rows: dict[str, torch.Tensor]) -> None:
        """Add rows to the identity's shard (atomic rewrite of that one file)."""
        if not rows:
            return
        shard = self._read(identity)
        new_keys = [k for k in rows if k not in shard["index"]]
        if not new_keys:
            return
        new_x = torch.stack([rows[k].detach().float().cpu().reshape(-1) for k in new_keys])
        x = new_x if shard["x"] is None else torch.cat([shard["x"], new_x])
        keys = shard["keys"] + new_keys
        path = self.shard_path(identity)
        atomic_torch_save({"identity": identity, "keys": keys, "x": x.contiguous()}, path)
        merged = {"identity": identity, "keys": keys, "x": x, "index": {k: i for i, k in enumerate(keys)}}
        self._loaded[path] = (path.stat().st_mtime_ns, merged)

    def __repr__(self) -> str:
        return f"FeatureCache({str(self.directory)!r}, hits={self.hits}, misses={self.misses})"
