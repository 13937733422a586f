"""Encoders for a local folder holding a Hugging Face model (transformers Auto classes).

- text: mean of `last_hidden_state` over the attention mask (CLIP-style: `get_text_features`);
- image: CLIP-style `get_image_features`, else `pooler_output`, else the mean over positions;
- audio: `AutoFeatureExtractor` + mean of `last_hidden_state` over time.
A CLIP-style folder (its config has `text_config` and `vision_config`) puts image and text in
one space. transformers is imported only here, on first use; nothing is downloaded.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import torch

from mmgraph.encoders.base import HF_FOLDER_NAME, Encoder, file_fingerprint, register_encoder
from mmgraph.errors import InputError

log = logging.getLogger("mmgraph.encoders")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def folder_fingerprint(path: str) -> str:
    """Hash of config + weights fingerprints: changes whenever the model would."""
    h = hashlib.sha256()
    folder = Path(path)
    for f in sorted(folder.iterdir()):
        if f.suffix in (".safetensors", ".bin", ".pt", ".pth", ".json", ".txt", ".model"):
            h.update(f.name.encode() + file_fingerprint(f).encode())
    return h.hexdigest()[:16]


def _is_clip_like(config) -> bool:
    return hasattr(config, "text_config") and hasattr(config, "vision_config")


def load_hf_model(path: str, device: str):
    """(config, model in eval mode on device), loaded once per folder content and device."""
    return _load_hf_model(path, device, folder_fingerprint(path))


@functools.lru_cache(maxsize=None)
def _load_hf_model(path: str, device: str, fingerprint: str):
    from transformers import AutoConfig, AutoModel
    from transformers.utils import logging as hf_logging

    bar_was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a "Loading weights" bar per model is noise in a build
    try:
        config = AutoConfig.from_pretrained(path)
        model = AutoModel.from_pretrained(path)
    except (OSError, ValueError, KeyError) as e:
        raise InputError(f"{path}: not a loadable Hugging Face model folder: {e}") from e
    finally:
        if bar_was_on:
            hf_logging.enable_progress_bar()
    return config, model.eval().to(device)


def _features(out: Any) -> torch.Tensor:
    # get_*_features returns a tensor in transformers 4 and may return a model output in 5.
    if isinstance(out, torch.Tensor):
        return out
    pooled = getattr(out, "pooler_output", None)
    return pooled if pooled is not None else out[0]


def _mean_over_mask(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


class _HFFolderEncoder(Encoder):
    def __init__(self, *, path: str, **options: Any):
        if not Path(path).is_dir():
            raise InputError(f"{path}: Hugging Face model folder not found")
        super().__init__(path=str(path), **options)
        self.config, _ = load_hf_model(self.options["path"], "cpu")
        self.clip_like = _is_clip_like(self.config)

    def fingerprint(self) -> str:
        return folder_fingerprint(self.options["path"])

    def settings(self) -> dict:
        return {k: v for k, v in self.options.items() if k != "path"}

    def model(self) -> torch.nn.Module:
        return load_hf_model(self.options["path"], str(self.device))[1]


@register_encoder("text", HF_FOLDER_NAME)
class HFTextEncoder(_HFFolderEncoder):
    """Mean-pooled token states of a local HF text model (or CLIP text features)."""

    def __init__(self, *, path: str, max_length: int = 256, normalize: bool = False):
        super().__init__(path=path, max_length=max_length, normalize=normalize)
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(self.options["path"])
        cfg = self.config
        self.dim = int(cfg.projection_dim if self.clip_like else cfg.hidden_size)
        self.normalize = normalize
        self.max_length = max_length
        if self.clip_like:  # CLIP's position table caps the length
            self.max_length = min(max_length, cfg.text_config.max_position_embeddings)

    def load(self, value: Any) -> str:
        return str(value)

    def size_hint(self, value: Any) -> int:
        return len(str(value))

    @torch.inference_mode()
    def encode(self, batch: list) -> torch.Tensor:
        enc = self.tokenizer(batch, padding=True, truncation=True, max_length=self.max_length,
                             return_tensors="pt").to(self.device)
        if self.clip_like:
            x = _features(self.model().get_text_features(input_ids=enc["input_ids"],
                                                         attention_mask=enc["attention_mask"]))
        else:
            hidden = self.model()(**enc).last_hidden_state
            x = _mean_over_mask(hidden, enc["attention_mask"])
        if self.normalize:
            x = torch.nn.functional.normalize(x, dim=-1)
        return x.float().cpu()


@register_encoder("image", HF_FOLDER_NAME)
class HFImageEncoder(_HFFolderEncoder):
    """A local HF vision model: CLIP image features, else pooled output, else mean of states."""

    media = True

    def __init__(self, *, path: str):
        super().__init__(path=path)
        self.processor = self._image_processor()
        self.dim = self._probe_dim()

    def _image_processor(self):
        from transformers import AutoImageProcessor

        try:  # the slow (PIL/numpy) processors need no torchvision
            return AutoImageProcessor.from_pretrained(self.options["path"], use_fast=False)
        except (OSError, ValueError, ImportError) as e:
            # Features still come out, but not the model's own preprocessing: say so.
            size, mean, std = self._crop_settings()
            log.warning("image encoder %s: no image processor could be loaded (%s: %s); using "
                        "mmgraph's own preprocessing instead: resize and centre-crop to %d px, "
                        "normalise with mean %s and std %s", self.options["path"], type(e).__name__,
                        str(e).splitlines()[0] if str(e) else "", size, mean, std)
            return None

    def _probe_dim(self) -> int:
        cfg = self.config
        if self.clip_like:
            return int(cfg.projection_dim)
        from PIL import Image

        probe = self.load_image(Image.new("RGB", (32, 32), (128, 128, 128)))
        return int(self.encode([probe]).shape[1])

    def _crop_settings(self) -> tuple[int, list, list]:
        path = Path(self.options["path"]) / "preprocessor_config.json"
        cfg = json.loads(path.read_text()) if path.exists() else {}
        vision = getattr(self.config, "vision_config", self.config)  # CLIP keeps it there
        size = cfg.get("crop_size") or cfg.get("size") or getattr(vision, "image_size", 224)
        if isinstance(size, dict):
            size = size.get("height") or size.get("shortest_edge") or next(iter(size.values()))
        return int(size), cfg.get("image_mean", [0.5] * 3), cfg.get("image_std", [0.5] * 3)

    def load_image(self, im) -> torch.Tensor:
        if self.processor is not None:
            return torch.as_tensor(self.processor(images=im, return_tensors="np")["pixel_values"][0])
        from mmgraph.encoders.image import center_crop_tensor

        size, mean, std = self._crop_settings()
        return center_crop_tensor(im, resize=size, crop=size, mean=mean, std=std)

    def load(self, value: Any) -> torch.Tensor:
        from mmgraph.encoders.image import decode_image

        return self.load_image(decode_image(value))

    def augment(self, item: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        from mmgraph.encoders.image import augment_image

        return augment_image(item, generator)

    @torch.inference_mode()
    def encode(self, batch: list) -> torch.Tensor:
        pixels = torch.stack(batch).float().to(self.device)
        if self.clip_like:
            return _features(self.model().get_image_features(pixel_values=pixels)).float().cpu()
        out = self.model()(pixel_values=pixels)
        pooled = getattr(out, "pooler_output", None)
        if pooled is not None:
            return pooled.reshape(len(batch), -1).float().cpu()
        hidden = out.last_hidden_state  # [B, T, d] tokens or [B, C, H, W] maps
        x = hidden.mean(dim=(2, 3)) if hidden.dim() == 4 else hidden.mean(1)
        return x.float().cpu()


@register_encoder("audio", HF_FOLDER_NAME)
class HFAudioEncoder(_HFFolderEncoder):
    """A local HF speech model (e.g. Wav2Vec2): mean of `last_hidden_state` over time.

    Clips are run one at a time: padding changes the outputs of group-norm models.
    """

    media = True

    def __init__(self, *, path: str):
        super().__init__(path=path)
        from transformers import AutoFeatureExtractor

        self.extractor = AutoFeatureExtractor.from_pretrained(self.options["path"])
        self.sample_rate = int(getattr(self.extractor, "sampling_rate", 16000))
        self.dim = int(self.config.hidden_size)

    def load(self, value: Any):
        from mmgraph.encoders.audio_signal import read_audio

        return read_audio(value, self.sample_rate)

    def augment(self, item, generator: torch.Generator):
        from mmgraph.encoders.audio_signal import augment_waveform

        return augment_waveform(item, self.sample_rate, generator)

    @torch.inference_mode()
    def encode(self, batch: list) -> torch.Tensor:
        rows = []
        for wave in batch:
            inputs = self.extractor(wave, sampling_rate=self.sample_rate, return_tensors="pt").to(self.device)
            rows.append(self.model()(**inputs).last_hidden_state.mean(1)[0])
        return torch.stack(rows).float().cpu()
