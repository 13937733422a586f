"""`encode_values` over the ranks of a torchrun launch: each encodes a contiguous share.

Rank r encodes rows `shard_bounds(N, r, world)` of the column with the ordinary pipeline, the
shares are gathered (in rank order) to every rank, so every rank holds the column a single
process would have encoded and the rest of the build (kNN, assembly) runs unchanged. Encoders
with fitted statistics (numeric, categorical, vector) are fitted on the whole column first and
not sharded: they cost next to nothing. A bad file in any share fails every rank with the same
error, naming the row of the whole column.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from mmgraph.distributed import DistContext, current
from mmgraph.encoders.base import BadItemError, EncodedFeature, Encoder
from mmgraph.encoders.pipeline import encode_values
from mmgraph.errors import InputError


class _DeferredCache:
    """Reads a `FeatureCache`; keeps writes until `flush`, so ranks write the shared file in turn."""

    def __init__(self, cache):
        self.cache = cache
        self.pending: list[tuple[str, dict]] = []

    def lookup(self, identity: str, keys: list[str]):
        return self.cache.lookup(identity, keys)

    def store(self, identity: str, rows: dict) -> None:
        self.pending.append((identity, rows))

    def flush(self, ctx: DistContext) -> None:
        # One rank at a time: each re-reads the file the previous one wrote and adds its rows.
        for rank in range(ctx.world_size):
            if rank == ctx.rank:
                for identity, rows in self.pending:
                    self.cache.store(identity, rows)
            ctx.barrier()
        self.pending.clear()


def encode_values_sharded(encoder: Encoder, values: Sequence, *, ctx: DistContext | None = None,
                          cache=None, **options: Any) -> EncodedFeature:
    """`encode_values(encoder, values, cache=cache, **options)` with the rows split over ranks.

    Outside torchrun (one process) it is `encode_values` itself. The result is the same on every
    rank and the same as one process's, up to the encoder's batch-to-batch float differences.

    Example::

        with mmgraph.distributed.session(device):          # under torchrun --nproc-per-node=2
            feat = encode_values_sharded(make_encoder("audio"), paths)   # each rank loads half
    """
    ctx = ctx or current()
    values = list(values)
    if not ctx.distributed or encoder.fitted_state:
        if not encoder.is_fitted:
            encoder.fit(values)
        return encode_values(encoder, values, cache=cache, **options)
    start, stop = ctx.bounds(len(values))
    deferred = _DeferredCache(cache) if cache is not None else None
    try:
        out = encode_values(encoder, values[start:stop], cache=deferred, **options)
        part = ("ok", out.x, out.mask, out.views, [(start + row, value, reason) for row, value, reason in out.bad])
    except BadItemError as e:
        part = ("bad", start + e.row_index, e.value, e.reason)
    except InputError as e:
        part = ("input", f"{e} (row counted in rows {start + 1}-{stop}, rank {ctx.rank}'s share)")
    parts = ctx.all_gather(part)
    for failed in parts:
        if failed[0] == "bad":
            raise BadItemError(*failed[1:])
        if failed[0] == "input":
            raise InputError(failed[1])
    if deferred is not None:
        deferred.flush(ctx)
    views = [p[3] for p in parts]
    return EncodedFeature(
        x=torch.cat([p[1] for p in parts]),
        mask=torch.cat([p[2] for p in parts]),
        bad=[b for p in parts for b in p[4]],
        views=None if views[0] is None else torch.cat(views),
    )
