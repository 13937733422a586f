"""encode_values and FeatureCache: missing values, bad files, threads, views, cache reuse."""
from __future__ import annotations

import shutil

import pytest
import torch

from mmgraph.encoders import BadItemError, FeatureCache, encode_values, make_encoder
from mmgraph.errors import InputError


class CountingEncoder:
    """Wraps an encoder and counts the items it encodes (to see what the cache saved)."""

    def __init__(self, inner):
        self.inner = inner
        self.encoded = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def encode(self, batch):
        self.encoded += len(batch)
        return self.inner.encode(batch)


@pytest.fixture
def clips(tmp_path, fsdd_wavs):
    paths = []
    for p in fsdd_wavs[:6]:
        paths.append(tmp_path / p.name)
        shutil.copy(p, paths[-1])
    return paths


def test_missing_values_are_masked_zero_rows(clips, tmp_path):
    enc = make_encoder("audio", "signal")
    values = [str(clips[0]), None, "", str(tmp_path / "no_such_file.wav"), str(clips[1]), float("nan")]
    feat = encode_values(enc, values)
    assert feat.mask.tolist() == [True, False, False, False, True, False]
    assert (feat.x[~feat.mask] == 0).all() and (feat.x[feat.mask].abs().sum(1) > 0).all()
    assert feat.bad == [] and feat.views is None


def test_bad_file_raises_or_is_skipped_and_listed(clips, tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF....WAVEfmt garbage")
    values = [str(clips[0]), str(broken), str(clips[1])]
    enc = make_encoder("audio", "signal")
    with pytest.raises(BadItemError) as info:
        encode_values(enc, values)
    assert isinstance(info.value, InputError) and info.value.row_index == 1
    assert "broken.wav" in str(info.value)
    feat = encode_values(enc, values, skip_bad=True)
    assert feat.mask.tolist() == [True, False, True]
    assert len(feat.bad) == 1 and feat.bad[0][:2] == (1, str(broken)) and "readable" in feat.bad[0][2]


def test_threads_batches_and_order_do_not_change_results(clips):
    enc = make_encoder("audio", "signal")
    values = [str(p) for p in clips]
    a = encode_values(enc, values, batch_size=4, num_workers=2).x
    b = encode_values(enc, values, batch_size=1, num_workers=0).x
    c = encode_values(enc, values[::-1], batch_size=3, num_workers=3).x.flip(0)
    assert torch.allclose(a, b, atol=1e-5) and torch.allclose(a, c, atol=1e-5)


def test_cache_hits_and_reencodes_only_the_changed_file(clips, tmp_path, fsdd_wavs):
    cache = FeatureCache(tmp_path / "cache")
    values = [str(p) for p in clips]
    enc = CountingEncoder(make_encoder("audio", "signal"))
    first = encode_values(enc, values, cache=cache)
    assert enc.encoded == 6 and cache.misses == 6
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 1  # one shard per encoder identity

    again = CountingEncoder(make_encoder("audio", "signal"))
    second = encode_values(again, values, cache=FeatureCache(tmp_path / "cache"))
    assert again.encoded == 0 and torch.equal(first.x, second.x) and second.mask.all()

    shutil.copy(fsdd_wavs[-1], clips[2])  # new content for one row
    third_enc = CountingEncoder(make_encoder("audio", "signal"))
    third = encode_values(third_enc, values, cache=FeatureCache(tmp_path / "cache"))
    assert third_enc.encoded == 1
    changed = [i for i in range(6) if not torch.equal(first.x[i], third.x[i])]
    assert changed == [2]

    other = CountingEncoder(make_encoder("audio", "signal", segments=4))  # other settings, other identity
    encode_values(other, values, cache=FeatureCache(tmp_path / "cache"))
    assert other.encoded == 6


def test_cached_views_equal_fresh_views(clips, tmp_path):
    values = [str(p) for p in clips[:3]]
    cache = FeatureCache(tmp_path / "cache")
    fresh = encode_values(make_encoder("audio", "signal"), values, views=2, seed=5)
    encode_values(make_encoder("audio", "signal"), values, views=2, seed=5, cache=cache)
    enc = CountingEncoder(make_encoder("audio", "signal"))
    cached = encode_values(enc, values, views=2, seed=5, cache=cache)
    assert enc.encoded == 0
    assert torch.allclose(cached.views, fresh.views, atol=1e-5)
    assert torch.allclose(cached.x, fresh.x, atol=1e-5)


def test_fitted_encoders_bypass_the_cache(tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    feat = encode_values(make_encoder("numeric"), ["1", "2", None], cache=cache)
    assert feat.mask.tolist() == [True, True, False]
    assert list((tmp_path / "cache").glob("*.pt")) == [] and cache.hits == cache.misses == 0


def test_damaged_shard_is_a_cache_miss(clips, tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    enc = make_encoder("audio", "signal")
    first = encode_values(enc, [str(clips[0])], cache=cache)
    cache.shard_path(enc.identity).write_bytes(b"not a torch file")
    second = encode_values(enc, [str(clips[0])], cache=FeatureCache(tmp_path / "cache"))
    assert torch.equal(first.x, second.x)


def test_bad_arguments_are_input_errors():
    enc = make_encoder("numeric")
    with pytest.raises(InputError, match="batch_size"):
        encode_values(enc, ["1"], batch_size=0)
    with pytest.raises(InputError, match="views"):
        encode_values(enc, ["1"], views=-1)
    with pytest.raises(InputError, match="does not support augmentation"):
        encode_values(enc, ["1"], views=1)


def test_many_rows_with_repeated_files_hash_in_order(clips, tmp_path):
    values = [str(clips[i % 6]) for i in range(70)]  # >= 64 rows: keys are hashed in worker chunks
    enc = make_encoder("audio", "signal")
    plain = encode_values(enc, values, num_workers=3)
    cached = encode_values(enc, values, num_workers=3, cache=FeatureCache(tmp_path / "cache"))
    again = encode_values(enc, values, num_workers=3, cache=FeatureCache(tmp_path / "cache"))
    assert torch.allclose(plain.x, cached.x, atol=1e-5) and torch.equal(cached.x, again.x)
    assert torch.equal(again.x[0], again.x[6])


def test_repeated_content_is_encoded_once_and_shared(clips, tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF....WAVEfmt garbage")
    values = [str(clips[0]), str(broken), str(clips[0]), str(broken), str(clips[1])]
    enc = CountingEncoder(make_encoder("audio", "signal"))
    feat = encode_values(enc, values, cache=FeatureCache(tmp_path / "cache"), skip_bad=True)
    assert enc.encoded == 2  # clips[0] once, clips[1] once
    assert torch.equal(feat.x[0], feat.x[2])
    assert feat.mask.tolist() == [True, False, True, False, True]
    assert [b[0] for b in feat.bad] == [1, 3] and feat.bad[0][2] == feat.bad[1][2]
