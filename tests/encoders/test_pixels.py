"""The raw-pixel thumbnail encoder (`image: pixels`) on real 8x8 digits: scale, invariances, errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from mmgraph.encoders import BadItemError, encode_values, make_encoder
from mmgraph.errors import InputError

from encoder_media import digit_rows, write_digit_png


@pytest.fixture(scope="module")
def encoder():
    return make_encoder("image", "pixels")


def test_shape_centre_and_scale(encoder, digit_pngs):
    x = encode_values(encoder, [str(p) for p in digit_pngs]).x
    assert x.shape == (6, 256) and encoder.dim == 256
    assert torch.allclose(x.mean(1), torch.zeros(6), atol=1e-5)
    assert torch.allclose(x.pow(2).mean(1), torch.ones(6), atol=1e-4)
    assert make_encoder("image", "pixels", size=8, grayscale=False).dim == 8 * 8 * 3


def test_same_digit_nearer_than_other_digits(tmp_path):
    rows = digit_rows(200)
    paths, labels = [], []
    for i, (px, label) in enumerate(rows):
        paths.append(str(write_digit_png(px, tmp_path / f"{i}.png")))
        labels.append(label)
    x = F.normalize(encode_values(make_encoder("image", "pixels", size=8), paths).x, dim=1)
    labels = torch.tensor(labels)
    sim = x @ x.T
    sim.fill_diagonal_(-2)
    nearest = labels[sim.argmax(1)]
    assert (nearest == labels).float().mean() >= 0.85  # 1-NN digit agreement on real handwriting


def test_ink_polarity_contrast_and_mode_do_not_matter(tmp_path):
    px, _ = digit_rows(1)[0]
    grey = (px * 255 / 16).astype(np.uint8)
    Image.fromarray(grey, "L").save(tmp_path / "light_on_dark.png")
    Image.fromarray((255 - grey // 2).astype(np.uint8), "L").save(tmp_path / "dark_on_light_faint.png")
    rgba = np.stack([grey] * 3 + [np.full_like(grey, 255)], axis=-1)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    x = encode_values(make_encoder("image", "pixels", size=8),
                      [str(tmp_path / n) for n in ("light_on_dark.png", "dark_on_light_faint.png", "rgba.png")]).x
    assert F.cosine_similarity(x[0], -x[1], dim=0) > 0.99  # negative image: correlation -1
    assert torch.allclose(x[0], x[2], atol=1e-5)


def test_uniform_image_is_zeros_and_bad_file_names_the_row(encoder, tmp_path, digit_pngs):
    Image.new("L", (8, 8), 200).save(tmp_path / "flat.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    x = encode_values(encoder, [str(tmp_path / "flat.png")]).x
    assert torch.equal(x, torch.zeros(1, 256))
    with pytest.raises(BadItemError, match=r"row 2: cannot decode .*broken.png"):
        encode_values(encoder, [str(digit_pngs[0]), str(tmp_path / "broken.png")])


@pytest.mark.parametrize("size", [0, 1000])
def test_bad_size(size):
    with pytest.raises(InputError, match="size"):
        make_encoder("image", "pixels", size=size)
