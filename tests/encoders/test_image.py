"""Image decoding (EXIF, alpha, palette, 16-bit, CMYK, truncated files) and EfficientNet-Lite0."""
from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image

from mmgraph.encoders import BadItemError, encode_values, encoder_from_spec, make_encoder
from mmgraph.encoders.image import decode_image
from mmgraph.errors import DecodeError

PHOTO = Path(matplotlib.__file__).parent / "mpl-data" / "sample_data" / "grace_hopper.jpg"
MILITARY_UNIFORM = 652  # ImageNet class of the photo (Grace Hopper in uniform)


@pytest.fixture(scope="module")
def encoder():
    return make_encoder("image")


def test_real_photo_gets_the_right_imagenet_class(encoder):
    # Checks the whole preprocessing (crop, normalisation) against the pretrained classifier.
    with torch.inference_mode():
        logits = encoder.model()(encoder.load(str(PHOTO)).unsqueeze(0))
    top5 = logits.softmax(-1).topk(5).indices[0].tolist()
    assert MILITARY_UNIFORM in top5


def test_digit_pngs_encode_to_1280_features(encoder, digit_pngs):
    feat = encode_values(encoder, [str(p) for p in digit_pngs], batch_size=4)
    assert feat.x.shape == (6, 1280) and feat.mask.all() and feat.x.dtype == torch.float32
    assert (feat.x >= 0).all()  # pooled ReLU6 features
    # Two images of the same digit are closer than images of different digits on average.
    labels = [int(p.stem.split("_")[-1]) for p in digit_pngs]
    z = torch.nn.functional.normalize(feat.x, dim=1)
    sim = z @ z.T
    same = [sim[i, j] for i in range(6) for j in range(i + 1, 6) if labels[i] == labels[j]]
    diff = [sim[i, j] for i in range(6) for j in range(i + 1, 6) if labels[i] != labels[j]]
    assert torch.stack(same).mean() > torch.stack(diff).mean()


def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, 20:] = 255  # left half black, right half white
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "rotated.jpg"
    Image.fromarray(arr).save(path, exif=exif.tobytes(), quality=95)
    im = decode_image(str(path))
    assert im.size == (20, 40)  # width and height swapped
    px = np.asarray(im.convert("L"), dtype=float)
    assert px[:20].mean() < 60 and px[20:].mean() > 200  # black on top, white below after rotation


def test_alpha_palette_grey16_and_cmyk_become_rgb(tmp_path):
    rgba = Image.new("RGBA", (16, 16), (0, 0, 0, 0))  # fully transparent black -> white
    rgba.save(tmp_path / "alpha.png")
    assert np.asarray(decode_image(str(tmp_path / "alpha.png"))).min() == 255

    pal = Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16), "L").convert("P")
    pal.save(tmp_path / "palette.png")
    grey16 = Image.fromarray((np.arange(256).reshape(16, 16) * 257).astype(np.uint16))
    grey16.save(tmp_path / "grey16.png")
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")
    for name in ("palette.png", "grey16.png"):
        im = decode_image(str(tmp_path / name))
        assert im.mode == "RGB" and np.asarray(im)[15, 15, 0] == 255 and np.asarray(im)[0, 0, 0] == 0
    cmyk = np.asarray(decode_image(str(tmp_path / "cmyk.jpg")), dtype=int)[8, 8]
    assert cmyk[0] > 200 and cmyk[1] < 50 and cmyk[2] < 50  # C=0 M=Y=full -> red


def test_same_picture_in_different_modes_gives_the_same_features(encoder, digit_pngs, tmp_path):
    grey = Image.open(digit_pngs[0])
    grey.convert("RGB").save(tmp_path / "rgb.png")
    grey.convert("P").save(tmp_path / "pal.png")
    grey.convert("RGBA").save(tmp_path / "rgba.png")
    paths = [str(digit_pngs[0])] + [str(tmp_path / n) for n in ("rgb.png", "pal.png", "rgba.png")]
    x = encode_values(encoder, paths).x
    assert torch.allclose(x, x[:1].expand_as(x), atol=1e-4)


def test_truncated_png_names_the_file(encoder, tmp_path):
    noisy = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    good = tmp_path / "good.png"
    Image.fromarray(noisy).save(good)
    bad = tmp_path / "truncated.png"
    bad.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(DecodeError, match="truncated.png"):
        encoder.load(str(bad))
    with pytest.raises(BadItemError, match=r"row 2: cannot decode .*truncated.png") as info:
        encode_values(encoder, [str(good), str(bad)])
    assert info.value.row_index == 1


def test_spec_round_trip_and_views(encoder, digit_pngs):
    again = encoder_from_spec(encoder.spec())
    assert again.identity == encoder.identity
    paths = [str(p) for p in digit_pngs[:2]]
    a = encode_values(encoder, paths, views=2, seed=3)
    b = encode_values(again, paths, views=2, seed=3)
    assert torch.equal(a.x, b.x) and torch.equal(a.views, b.views)
    assert a.views.shape == (2, 2, 1280)
    assert not torch.allclose(a.views[:, 0], a.x)  # a view is a different picture of the item
