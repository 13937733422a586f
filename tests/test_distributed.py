"""mmgraph.distributed helpers in one process: shares, weights, generators, the single-process path.

The real 2-process runs (gloo, under torchrun) are tests/train/test_ddp.py and
tests/data/test_sharded_build.py; failures that must reach every rank are checked here with a
rank whose peer's message is given.
"""
from __future__ import annotations

import dataclasses

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from mmgraph import distributed
from mmgraph.distributed import DistContext, shard_bounds
from mmgraph.errors import InputError


@given(n=st.integers(0, 1000), world=st.integers(1, 17))
def test_shards_are_disjoint_covering_balanced_and_in_rank_order(n, world):
    bounds = [shard_bounds(n, r, world) for r in range(world)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(stop == next_start for (_, stop), (next_start, _) in zip(bounds, bounds[1:]))
    sizes = [stop - start for start, stop in bounds]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)
    # The same split as tensor_split, which the training step uses for its batches.
    assert sizes == [len(c) for c in torch.arange(n).tensor_split(world)]


def test_bad_rank_is_refused():
    with pytest.raises(ValueError, match="rank 2 is not in a group of 2"):
        shard_bounds(10, 2, 2)


def test_shard_picks_the_ranks_share_along_a_dim():
    pairs = torch.arange(14).view(2, 7)
    second = DistContext(rank=1, world_size=2)
    assert second.shard(pairs, dim=1).tolist() == [[4, 5, 6], [11, 12, 13]]
    assert DistContext(rank=0, world_size=2).shard(torch.arange(7)).tolist() == [0, 1, 2, 3]
    alone = DistContext()
    assert alone.shard(pairs) is pairs and alone.is_main and not alone.distributed


def test_share_weights_average_to_the_batch_mean():
    values = torch.arange(7, dtype=torch.float64) ** 2
    contexts = [DistContext(rank=r, world_size=3) for r in range(3)]
    # Each rank's mean times its weight, averaged over ranks (what DDP does to gradients).
    averaged = sum(c.share_weight(7) * c.shard(values).mean() for c in contexts) / 3
    assert float(averaged) == pytest.approx(float(values.mean()))
    assert DistContext().share_weight(7) == 1.0


def test_rank_generators_differ_and_leave_the_shared_stream_alone():
    shared = torch.Generator().manual_seed(5)
    state = shared.get_state()
    a, b = (torch.randint(1000, (8,), generator=DistContext(rank=r, world_size=2).generator_for_rank(shared))
            for r in range(2))
    assert not torch.equal(a, b)  # each rank draws its own negatives
    assert torch.equal(shared.get_state(), state)  # the epochs' splits stay those of one process
    again = torch.randint(1000, (8,), generator=DistContext(rank=0, world_size=2).generator_for_rank(shared))
    assert torch.equal(a, again)  # and reproducibly so
    assert DistContext().generator_for_rank(shared) is shared


def test_single_process_context_passes_things_through():
    ctx = DistContext()
    obj = {"a": torch.ones(2)}
    assert ctx.broadcast(obj) is obj and ctx.all_gather(obj) == [obj]
    assert ctx.mean(1.5, 2.0) == (1.5, 2.0)
    assert ctx.on_main(lambda: 3) == 3
    with pytest.raises(InputError, match="taken"):
        ctx.on_main(lambda: (_ for _ in ()).throw(InputError("taken")))
    model = torch.nn.Linear(2, 1)
    runner = ctx.wrap(model)
    x = torch.ones(1, 2)
    assert torch.equal(runner(lambda m: m(x)), model(x))


def test_to_cpu_reaches_into_dataclasses_and_containers():
    @dataclasses.dataclass
    class State:
        best: dict
        rows: list

    out = distributed._to_cpu(State(best={"w": torch.ones(1)}, rows=[(torch.zeros(1), 2)]))
    assert isinstance(out, State) and out.best["w"].device.type == "cpu" and out.rows[0][1] == 2


def test_setup_without_torchrun_is_one_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with distributed.session(torch.device("cpu")) as ctx:
        assert distributed.current() is ctx and ctx.world_size == 1
    assert distributed.current() == DistContext()
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(InputError, match="WORLD_SIZE='two'"):
        distributed.setup(torch.device("cpu"))
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(InputError, match="RANK is not set: launch with torchrun"):
        distributed.setup(torch.device("cpu"))


@dataclasses.dataclass(frozen=True)
class RankOne(DistContext):
    """Rank 1 of 2 whose broadcast delivers a fixed message from rank 0."""

    from_main: object = None

    def broadcast(self, obj):
        return self.from_main


def test_on_main_failures_reach_the_other_ranks():
    rank0 = RankOne(rank=0, world_size=2, from_main=("input", "ignored: rank 0 raises its own"))
    with pytest.raises(InputError, match="^taken$"):
        rank0.on_main(lambda: (_ for _ in ()).throw(InputError("taken")))
    with pytest.raises(InputError, match="output folder exists"):
        RankOne(rank=1, world_size=2, from_main=("input", "out: output folder exists")).on_main(lambda: 1 / 0)
    with pytest.raises(RuntimeError, match="rank 0 failed: ZeroDivisionError"):
        RankOne(rank=1, world_size=2, from_main=("error", "ZeroDivisionError: division by zero")).on_main(lambda: 1)
    assert RankOne(rank=1, world_size=2, from_main=("ok", 7)).on_main(lambda: 1 / 0) == 7
