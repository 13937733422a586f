"""The image forward: onnxruntime (when the model could be exported) or torch, same features."""
from __future__ import annotations

import importlib.util

import pytest
import torch

from mmgraph.encoders import BadItemError, encode_values, make_encoder
from mmgraph.errors import InputError

HAS_ONNX = importlib.util.find_spec("onnx") is not None


@pytest.fixture
def encoder(tmp_path, monkeypatch):
    monkeypatch.setenv("MMGRAPH_ONNX_DIR", str(tmp_path / "onnx"))  # never the user's folder
    monkeypatch.delenv("MMGRAPH_FORWARD", raising=False)
    return make_encoder("image")


def torch_features(encoder, paths, monkeypatch) -> torch.Tensor:
    monkeypatch.setenv("MMGRAPH_FORWARD", "torch")
    assert encoder.session() is None
    x = torch.cat([encoder.encode([encoder.load(p)]) for p in paths])
    monkeypatch.delenv("MMGRAPH_FORWARD")
    return x


def test_batched_threaded_features_equal_the_one_at_a_time_loop_in_input_order(encoder, digit_pngs,
                                                                                monkeypatch):
    paths = [str(p) for p in reversed(digit_pngs)]
    loop = torch_features(encoder, paths, monkeypatch)
    batched = encode_values(encoder, paths, batch_size=4, num_workers=2).x
    assert (batched - loop).abs().max() < 1e-4  # float noise only: the build cache relies on it
    assert not torch.allclose(batched[0], batched[1])


def test_without_onnx_auto_falls_back_to_torch_and_onnxruntime_is_an_error(encoder, monkeypatch):
    if HAS_ONNX:
        pytest.skip("onnx is installed: the export works")
    assert encoder.session() is None
    monkeypatch.setenv("MMGRAPH_FORWARD", "onnxruntime")
    with pytest.raises(InputError, match="onnxruntime"):
        encoder.session()
    monkeypatch.setenv("MMGRAPH_FORWARD", "tensorrt")
    with pytest.raises(InputError, match="MMGRAPH_FORWARD"):
        encoder.session()


@pytest.mark.skipif(not HAS_ONNX, reason="exporting to ONNX needs the onnx package")
def test_exported_onnxruntime_forward_matches_torch(encoder, digit_pngs, tmp_path, monkeypatch):
    paths = [str(p) for p in digit_pngs]
    assert encoder.session() is not None and list((tmp_path / "onnx").glob("*.onnx"))
    ours = encode_values(encoder, paths, batch_size=4).x
    assert (ours - torch_features(encoder, paths, monkeypatch)).abs().max() < 1e-4


@pytest.mark.skipif(not HAS_ONNX, reason="exporting to ONNX needs the onnx package")
@pytest.mark.parametrize("rows", [1, 2, 5])
def test_side_by_side_sessions_keep_the_rows_order_and_features(encoder, digit_pngs, rows):
    from mmgraph.encoders.onnx_forward import SessionGroup

    path = encoder.session().path
    x = torch.stack([encoder.load(str(p)) for p in digit_pngs[:rows]])
    one, two = SessionGroup(path, 1), SessionGroup(path, 2)
    assert len(two.sessions) == 2
    for chunk in (1, 2):
        torch.testing.assert_close(two.run(x, chunk), one.run(x, 1), rtol=0, atol=1e-5)
    assert one.run(x).shape == (rows, 1280)


def test_a_bad_file_decoded_in_a_worker_thread_names_its_file_and_row(encoder, digit_pngs, tmp_path):
    bad = tmp_path / "not_an_image.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    paths = [str(p) for p in digit_pngs[:4]] + [str(bad)]
    with pytest.raises(BadItemError, match=r"row 5: cannot decode .*not_an_image.png") as info:
        encode_values(encoder, paths, batch_size=2, num_workers=2)
    assert info.value.row_index == 4
    feat = encode_values(encoder, paths, batch_size=2, num_workers=2, skip_bad=True)
    assert feat.mask.tolist() == [True] * 4 + [False] and feat.bad[0][:2] == (4, str(bad))
