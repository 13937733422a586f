"""Images: the raw-pixel thumbnail (`image: pixels`), for small images where an ImageNet network
sees little (glyphs, icons, sprites, scanned digits, 8x8 to 64x64 pictures).

Per image (loader threads): Pillow decoding as for every image encoder (`decode_image`: EXIF
orientation, alpha on white, palette and 16-bit converted), then grey levels (or RGB with
`grayscale=False`), resized to `size` x `size` (Pillow's antialiased bilinear filter) and
flattened. Per batch: each image minus its own mean, scaled to unit root-mean-square, so the
cosine between two images is their pixels' correlation, whatever the ink is darker or lighter
than the background, and the contrast or exposure.

Measured on the demo's 8x8 digits (`datasets/digits-av`, 210 training / 60 test images): the digit
vote of a test image's 8 cosine-nearest training images .93 at size 8 and .92 at 16, against
.87 for a logistic regression on the EfficientNet-Lite0 features.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mmgraph.encoders.base import Encoder, register_encoder
from mmgraph.encoders.image import decode_image
from mmgraph.errors import InputError


@register_encoder("image", "pixels")
class PixelEncoder(Encoder):
    """Centred, RMS-normalised grey (or RGB) thumbnails, `size * size` (x 3) numbers.

    >>> enc = make_encoder("image", "pixels", size=16)
    >>> x = enc.encode([enc.load("digit.png")])        # [1, 256]
    """

    media = True

    def __init__(self, *, size: int = 16, grayscale: bool = True):
        if not 1 <= int(size) <= 256:
            raise InputError(f"image encoder 'pixels': size must be in 1..256, got {size}")
        super().__init__(size=int(size), grayscale=bool(grayscale))
        self.dim = int(size) * int(size) * (1 if grayscale else 3)

    def load(self, value: Any) -> np.ndarray:
        from PIL import Image

        im = decode_image(str(value))
        if self.options["grayscale"]:
            im = im.convert("L")
        size = self.options["size"]
        im = im.resize((size, size), Image.BILINEAR)
        return np.asarray(im, dtype=np.float32).reshape(-1) / 255.0

    @torch.inference_mode()
    def encode(self, batch: list) -> torch.Tensor:
        x = torch.from_numpy(np.stack(batch)).float()
        x = x - x.mean(dim=1, keepdim=True)
        rms = x.pow(2).mean(dim=1, keepdim=True).sqrt()
        return (x / rms.clamp(min=1e-6)).contiguous()  # a uniform image stays all zeros
