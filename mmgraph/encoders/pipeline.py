"""`encode_values`: a column of raw values -> `[N, dim]` features, a mask, and the bad files.

Decoding (`encoder.load`) runs in a thread pool that stays `prefetch` batches ahead of the
encoder, so the model never waits for the disk; encoding runs batch by batch on the encoder's
device. Rows already in the `FeatureCache` are neither decoded nor encoded.
"""
from __future__ import annotations

import hashlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Sequence

import torch

from mmgraph.encoders.base import BadItemError, EncodedFeature, Encoder
from mmgraph.encoders.cache import FeatureCache, content_key
from mmgraph.errors import DecodeError, InputError
from mmgraph.utils import progress


def _view_generator(seed: int, key: str, view: int) -> torch.Generator:
    # Seeded by content, not row position, so a cached view equals a freshly computed one.
    digest = hashlib.sha256(f"{seed}:{key}:{view}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:7], "little"))


def _load_one(encoder: Encoder, row: int, value: Any, key: str | None, views: int, seed: int):
    """Runs in a worker thread: ("ok", item, [views]) | ("bad", reason) | ("error", exc)."""
    try:
        item = encoder.load(value)
        augmented = [encoder.augment(item, _view_generator(seed, key, v)) for v in range(views)]
        return ("ok", item, augmented)
    except DecodeError as e:
        return ("bad", e.reason)
    except InputError as e:
        return ("error", InputError(f"row {row + 1}: {value!r}: {e}"))


def _keys_for(encoder: Encoder, rows: list[int], values: Sequence, pool: ThreadPoolExecutor | None,
              workers: int) -> dict:
    def key(i: int) -> str:
        try:
            return content_key(values[i], media=encoder.media)
        except OSError as e:  # unreadable file: let load() report it as a bad file
            return f"unreadable:{i}:{e}"

    def keys_of(chunk: list[int]) -> list[str]:
        return [key(i) for i in chunk]

    if pool is None or len(rows) < 64:
        return {i: key(i) for i in rows}
    # One task per worker, not per file: small files hash faster than a future is scheduled.
    chunks = [rows[w::workers] for w in range(workers)]
    out = {}
    for chunk, keys in zip(chunks, pool.map(keys_of, chunks)):
        out.update(zip(chunk, keys))
    return {i: out[i] for i in rows}


def encode_values(
    encoder: Encoder,
    values: Sequence,
    *,
    batch_size: int = 64,
    num_workers: int = 2,
    cache: FeatureCache | None = None,
    skip_bad: bool = False,
    desc: str | None = None,
    views: int = 0,
    seed: int = 0,
    prefetch: int = 2,
) -> EncodedFeature:
    """Encode a column of raw values with `encoder`.

    `values[i]` is None (or an empty string, or a media path that does not exist) for a missing
    value: its mask is False and its row zeros. A file that exists but cannot be decoded raises
    `BadItemError(i, value, reason)`, or with `skip_bad` is masked and listed in `bad`.
    Encoders that learn statistics (numeric, categorical, vector) are fitted on `values` first
    unless already fitted. `views=V` adds V augmented views per row, `[N, V, dim]`, seeded by
    `seed` and the row's content.

    Example::

        enc = make_encoder("audio")
        feat = encode_values(enc, ["a.wav", None, "b.wav"], cache=FeatureCache("cache"))
        feat.x.shape, feat.mask          # (torch.Size([3, dim]), tensor([True, False, True]))
    """
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    if views < 0:
        raise InputError(f"views must be >= 0, got {views}")
    values = list(values)
    n = len(values)
    if not encoder.is_fitted:
        encoder.fit(values)
    present = [i for i, v in enumerate(values) if not encoder.is_missing(v)]
    x = torch.zeros(n, encoder.dim)
    mask = torch.zeros(n, dtype=torch.bool)
    view_x = torch.zeros(n, views, encoder.dim) if views else None
    bad: list[tuple[int, Any, str]] = []

    # Only media decoding is worth threads; text/number loads are trivial.
    workers = num_workers if encoder.media and num_workers > 0 else 0
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mmgraph-load") if workers else None
    try:
        use_cache = cache is not None and not encoder.fitted_state
        keys = _keys_for(encoder, present, values, pool, workers) if (use_cache or views) else {}
        todo = present
        if use_cache:
            todo = _fill_from_cache(cache, encoder, keys, views, seed, x, view_x, mask)
        todo, copies = _distinct(todo, keys)
        if hasattr(encoder, "size_hint"):  # similar lengths together: less padding per batch
            todo = sorted(todo, key=lambda i: encoder.size_hint(values[i]))
        new_rows = _run_batches(
            encoder, values, todo, keys, pool, batch_size=batch_size, prefetch=prefetch,
            views=views, seed=seed, skip_bad=skip_bad, desc=desc, x=x, view_x=view_x, mask=mask, bad=bad,
        )
        _share_with_duplicates(copies, values, x, view_x, mask, bad)
        if use_cache:
            cache.store(encoder.identity, {keys[i]: x[i] for i in new_rows})
            if views:
                cache.store(_views_identity(encoder, views, seed), {keys[i]: view_x[i] for i in new_rows})
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    bad.sort(key=lambda b: b[0])
    return EncodedFeature(x, mask, bad, view_x)


def _distinct(rows: list[int], keys: dict) -> tuple[list[int], dict[int, list[int]]]:
    """The first row of each content key, and {that row: the later rows with the same content}.

    A row's encoding depends on its batch at the last float bit (BLAS picks its kernel by
    size), so the same file encoded in two batches gives two slightly different rows while the
    cache can hold one. Encoding each content once keeps every returned row equal to the cached one.
    """
    if not keys:
        return rows, {}
    first: dict[str, int] = {}
    copies: dict[int, list[int]] = {}
    for i in rows:
        rep = first.setdefault(keys[i], i)
        if rep != i:
            copies.setdefault(rep, []).append(i)
    return [i for i in rows if first[keys[i]] == i], copies


def _share_with_duplicates(copies: dict[int, list[int]], values: list, x: torch.Tensor,
                           view_x: torch.Tensor | None, mask: torch.Tensor, bad: list) -> None:
    """Give each duplicate row its first row's encoding (or its bad-file reason)."""
    reasons = {i: reason for i, _, reason in bad}
    for rep, dups in copies.items():
        if rep in reasons:
            bad.extend((d, values[d], reasons[rep]) for d in dups)
        elif mask[rep]:
            index = torch.tensor(dups)
            x[index] = x[rep].clone()
            mask[index] = True
            if view_x is not None:
                view_x[index] = view_x[rep].clone()


def _views_identity(encoder: Encoder, views: int, seed: int) -> str:
    return f"{encoder.identity}|views={views},seed={seed}"


def _fill_from_cache(cache, encoder, keys, views, seed, x, view_x, mask) -> list[int]:
    """Copy cached rows into x (and views); returns the rows still to encode."""
    rows = list(keys)
    row_keys = [keys[i] for i in rows]
    hits, found = cache.lookup(encoder.identity, row_keys)
    if views and hits:  # a row counts as cached only together with its views
        view_hits, found_views = cache.lookup(_views_identity(encoder, views, seed), row_keys)
        at_x = {p: j for j, p in enumerate(hits)}
        at_v = {p: j for j, p in enumerate(view_hits)}
        both = [p for p in hits if p in at_v]
        if both:
            found = found[torch.tensor([at_x[p] for p in both])]
            chosen = found_views[torch.tensor([at_v[p] for p in both])]
            view_x[torch.tensor([rows[p] for p in both])] = chosen.view(len(both), views, -1)
        hits = both
    if hits:
        index = torch.tensor([rows[p] for p in hits])
        x[index] = found
        mask[index] = True
    cached = set(hits)
    return [i for p, i in enumerate(rows) if p not in cached]


def _run_batches(encoder, values, todo, keys, pool, *, batch_size, prefetch, views, seed, skip_bad,
                 desc, x, view_x, mask, bad) -> list[int]:
    """Load (threaded, `prefetch` batches ahead) and encode `todo`; returns the rows encoded."""
    pending: deque[tuple[int, Future | tuple]] = deque()
    feed = iter(todo)
    window = batch_size * (prefetch + 1)

    def top_up() -> None:
        for i in feed:
            args = (encoder, i, values[i], keys.get(i, str(i)), views, seed)
            pending.append((i, pool.submit(_load_one, *args) if pool is not None else args))
            if len(pending) >= window:
                return

    def result(job) -> tuple:
        return job.result() if isinstance(job, Future) else _load_one(*job)

    done: list[int] = []
    top_up()
    n_batches = -(-len(todo) // batch_size)
    label = desc or f"{encoder.modality} features"
    for _ in progress(range(n_batches), desc=label, total=n_batches, unit="batch"):
        batch = [pending.popleft() for _ in range(min(batch_size, len(pending)))]
        top_up()  # keep the loaders busy while this batch is encoded
        rows, items, augmented = [], [], []
        for i, job in batch:
            out = result(job)
            if out[0] == "ok":
                rows.append(i)
                items.append(out[1])
                augmented.extend(out[2])
            elif out[0] == "bad":
                if not skip_bad:
                    raise BadItemError(i, values[i], out[1])
                bad.append((i, values[i], out[1]))
            else:
                raise out[1]
        if not rows:
            continue
        index = torch.tensor(rows)
        x[index] = encoder.encode(items).float().cpu()
        mask[index] = True
        if views:
            encoded = torch.cat([encoder.encode(augmented[s:s + batch_size])
                                 for s in range(0, len(augmented), batch_size)])
            view_x[index] = encoded.float().cpu().view(len(rows), views, -1)
        done.extend(rows)
    return done
