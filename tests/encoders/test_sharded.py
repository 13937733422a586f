"""`encode_values_sharded` seen from one rank, its peers' shares given (no process group needed)."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from mmgraph.distributed import DistContext
from mmgraph.encoders import BadItemError, make_encoder
from mmgraph.encoders.sharded import encode_values_sharded


@dataclasses.dataclass(frozen=True)
class GivenPeers(DistContext):
    """A rank whose peers' messages are fixed: all_gather puts them around this rank's own."""

    peers: tuple = ()

    def all_gather(self, obj):
        parts = list(self.peers)
        parts.insert(self.rank, obj)
        return parts

    def broadcast(self, obj):
        return obj if self.is_main else self.peers[0]

    def barrier(self) -> None:
        pass


@pytest.fixture
def values(tmp_path):
    """4 rows: two missing files for rank 0's half; a missing one and an undecodable WAV for rank 1's."""
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVE" + b"\x00" * 16)
    return [str(tmp_path / "absent0.wav"), None, None, str(broken)]


def test_rank_one_encodes_its_half_and_rows_count_in_the_whole_column(values):
    encoder = make_encoder("audio")
    rank0 = ("ok", torch.ones(2, encoder.dim), torch.ones(2, dtype=torch.bool), None, [(0, "x.wav", "peer's")])
    ctx = GivenPeers(rank=1, world_size=2, peers=(rank0,))
    out = encode_values_sharded(encoder, values, ctx=ctx, skip_bad=True, num_workers=0)
    assert out.x.shape == (4, encoder.dim) and out.x[:2].eq(1).all() and out.x[2:].eq(0).all()
    assert out.mask.tolist() == [True, True, False, False]
    assert [(row, reason) for row, _, reason in out.bad][0] == (0, "peer's")
    assert [row for row, _, _ in out.bad] == [0, 3]  # rank 1's bad file is row 3 of the column


def test_a_bad_file_in_any_share_fails_every_rank_with_the_whole_columns_row(values):
    encoder = make_encoder("audio")
    with pytest.raises(BadItemError) as own:
        encode_values_sharded(encoder, values, ctx=GivenPeers(rank=1, world_size=2, peers=(("ok",),)),
                              num_workers=0)
    assert own.value.row_index == 3
    # Rank 0's own share is fine; it still fails, with rank 1's row.
    peer_failed = ("bad", 3, values[3], own.value.reason)
    with pytest.raises(BadItemError) as peer:
        encode_values_sharded(encoder, values, ctx=GivenPeers(rank=0, world_size=2, peers=(peer_failed,)),
                              num_workers=0)
    assert peer.value.row_index == 3 and peer.value.reason == own.value.reason


def test_fitted_encoders_are_fitted_on_the_whole_column_and_not_sharded():
    encoder = make_encoder("numeric")
    ctx = GivenPeers(rank=1, world_size=2, peers=(("never used",),))
    out = encode_values_sharded(encoder, [[1.0], [2.0], [3.0], [4.0]], ctx=ctx)
    assert out.x.shape == (4, 1) and float(out.x.mean()) == pytest.approx(0.0, abs=1e-6)
