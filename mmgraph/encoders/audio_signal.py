"""Signal processing for audio: reading, resampling, silence trimming, noise reduction,
augmentation, and batched log-mel / MFCC frames computed with torch.

Everything per clip (read, resample, trim, denoise) is numpy/scipy and runs in loader
threads; the frame features run batched in torch, with per-clip padding arranged so that a
clip's features never depend on the other clips in its batch.
"""
from __future__ import annotations

import functools
import math
from math import gcd

import numpy as np
import torch

from mmgraph.errors import DecodeError


def read_audio(path: str, sample_rate: int) -> np.ndarray:
    """Any soundfile-readable file -> mono float32 at `sample_rate` (channels averaged)."""
    import soundfile as sf

    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, ValueError, TypeError, OSError) as e:  # LibsndfileError is a RuntimeError
        raise DecodeError(str(path), f"not a readable audio file ({e})") from None
    if data.shape[0] == 0:
        raise DecodeError(str(path), "the audio file holds no samples")
    wave = data.mean(axis=1)
    if rate != sample_rate:
        from scipy.signal import resample_poly

        g = gcd(int(rate), int(sample_rate))
        wave = resample_poly(wave, sample_rate // g, int(rate) // g)
    wave = np.nan_to_num(wave.astype(np.float32, copy=False))
    return wave


def frame_energy_db(wave: np.ndarray, frame: int, hop: int) -> np.ndarray:
    """RMS energy in dB of each frame (frames start every `hop` samples)."""
    if len(wave) < frame:
        wave = np.pad(wave, (0, frame - len(wave)))
    frames = np.lib.stride_tricks.sliding_window_view(wave, frame)[::hop]
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    return 20 * np.log10(np.maximum(rms, 1e-10))


def trim_silence(wave: np.ndarray, sample_rate: int, *, top_db: float, margin_s: float) -> np.ndarray:
    """Cut leading/trailing frames quieter than (loudest frame - top_db), keeping a margin."""
    frame, hop = int(0.025 * sample_rate), int(0.010 * sample_rate)
    db = frame_energy_db(wave, frame, hop)
    loud = np.flatnonzero(db > db.max() - top_db)
    if len(loud) == 0:
        return wave
    margin = int(margin_s * sample_rate)
    start = max(0, loud[0] * hop - margin)
    stop = min(len(wave), loud[-1] * hop + frame + margin)
    return wave[start:stop]


def spectral_subtraction(wave: np.ndarray, *, quiet_share: float = 0.1, over: float = 1.5,
                         floor: float = 0.05) -> np.ndarray:
    """Subtract the mean magnitude of the quietest frames (the noise estimate) from every frame."""
    n_fft, hop = 512, 128
    if len(wave) < n_fft:
        return wave
    x = torch.from_numpy(wave)
    window = torch.hann_window(n_fft)
    spec = torch.stft(x, n_fft, hop, window=window, return_complex=True)
    mag = spec.abs()
    energy = mag.pow(2).sum(0)
    k = max(1, int(quiet_share * mag.shape[1]))
    noise = mag[:, energy.argsort()[:k]].mean(1, keepdim=True)
    clean = torch.maximum(mag - over * noise, floor * mag)
    out = torch.istft(clean * torch.exp(1j * spec.angle()), n_fft, hop, window=window, length=len(wave))
    return out.numpy().astype(np.float32)


def augment_waveform(wave: np.ndarray, sample_rate: int, generator: torch.Generator, *,
                     max_gain_db: float = 6.0, snr_db: tuple[float, float] = (15.0, 35.0),
                     max_shift_s: float = 0.1) -> np.ndarray:
    """A random view: gain, additive white noise at a random SNR, and a time shift."""
    u = torch.rand(4, generator=generator).tolist()
    noise = torch.randn(len(wave), generator=generator).numpy()
    gain = 10 ** (((2 * u[0] - 1) * max_gain_db) / 20)
    x = wave * gain
    power = float(np.mean(x.astype(np.float64) ** 2)) + 1e-12
    snr = snr_db[0] + (snr_db[1] - snr_db[0]) * u[1]
    x = x + noise.astype(np.float32) * math.sqrt(power / 10 ** (snr / 10))
    shift = int((2 * u[2] - 1) * max_shift_s * sample_rate)
    if shift > 0:  # delay: silence in front
        x = np.concatenate([np.zeros(shift, np.float32), x])
    elif shift < 0 and len(x) + shift > sample_rate // 10:  # advance: drop the first samples
        x = x[-shift:]
    return x.astype(np.float32)


@functools.lru_cache(maxsize=16)
def mel_filterbank(n_mels: int, n_fft: int, sample_rate: int, fmin: float, fmax: float) -> torch.Tensor:
    """Triangular filters on the HTK mel scale, each normalised to unit area: [n_mels, n_fft//2+1]."""
    def mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def hz(m):
        return 700.0 * (10 ** (np.asarray(m) / 2595.0) - 1.0)

    edges = hz(np.linspace(mel(fmin), mel(fmax), n_mels + 2))
    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    lower = (freqs[None, :] - edges[:-2, None]) / (edges[1:-1, None] - edges[:-2, None])
    upper = (edges[2:, None] - freqs[None, :]) / (edges[2:, None] - edges[1:-1, None])
    fb = np.maximum(0.0, np.minimum(lower, upper))
    fb /= np.maximum(fb.sum(1, keepdims=True), 1e-10)
    return torch.tensor(fb, dtype=torch.float32)


@functools.lru_cache(maxsize=16)
def dct_matrix(n_mfcc: int, n_mels: int) -> torch.Tensor:
    """Orthonormal DCT-II: [n_mels, n_mfcc]."""
    n = torch.arange(n_mels, dtype=torch.float64)
    k = torch.arange(n_mfcc, dtype=torch.float64)
    m = torch.cos(math.pi / n_mels * (n[:, None] + 0.5) * k[None, :]) * math.sqrt(2.0 / n_mels)
    m[:, 0] /= math.sqrt(2.0)
    return m.float()


@functools.lru_cache(maxsize=16)
def cepstral_lifter(n_mfcc: int, lifter: int) -> torch.Tensor:
    """HTK's sinusoidal lifter `1 + (L/2) sin(pi k / L)` over coefficients k = 0..n_mfcc-1 ([n_mfcc]).

    It raises the middle coefficients (formant detail) against c1-c2 (spectral tilt, which varies
    most between speakers and microphones); `lifter = 0` gives all ones.
    """
    k = torch.arange(n_mfcc, dtype=torch.float64)
    if lifter <= 0:
        return torch.ones(n_mfcc)
    return (1.0 + lifter / 2.0 * torch.sin(math.pi * k / lifter)).float()


def pad_batch(waves: list[np.ndarray], n_fft: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Reflect-pad each clip by n_fft//2 on its own, then zero-pad to a common length.

    Framing then gives each clip exactly the frames it would get alone (centre framing), so
    outputs do not depend on batch composition. Returns ([B, L], frames per clip [B]).
    """
    half = n_fft // 2
    padded = []
    for w in waves:
        w = w if len(w) > half else np.pad(w, (0, half + 1 - len(w)))
        padded.append(np.pad(w, (half, half), mode="reflect"))
    length = max(len(p) for p in padded)
    out = torch.zeros(len(padded), length)
    for i, p in enumerate(padded):
        out[i, : len(p)] = torch.from_numpy(p)
    return out, torch.tensor([len(p) for p in padded])


def log_mel_frames(waves: list[np.ndarray], sample_rate: int, *, n_mels: int, fmin: float, fmax: float,
                   floor: float, preemphasis: float = 0.97,
                   device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Batched log-mel energies [B, T, n_mels] (25 ms Hann windows, 10 ms hop) and valid frames [B].

    Energies are floored at `floor` times the clip's loudest mel energy before the log, so the
    recording's noise floor (which differs between microphones and rooms) is flattened away.
    """
    n_fft, win, hop = 512, int(0.025 * sample_rate), int(0.010 * sample_rate)
    if preemphasis:
        waves = [np.append(w[:1], w[1:] - preemphasis * w[:-1]).astype(np.float32) for w in waves]
    x, lengths = pad_batch(waves, n_fft)
    x = x.to(device)
    window = torch.hann_window(win, device=device)
    spec = torch.stft(x, n_fft, hop, win_length=win, window=window, center=False, return_complex=True)
    power = spec.real.pow(2) + spec.imag.pow(2)  # [B, F, T]
    fb = mel_filterbank(n_mels, n_fft, sample_rate, fmin, fmax).to(device)
    mel = torch.matmul(fb, power).transpose(1, 2)  # [B, T, n_mels]
    frames = (lengths - n_fft) // hop + 1
    loudest = mel.amax(dim=(1, 2), keepdim=True)  # padding frames are silent: they never win
    return torch.log(mel + floor * loudest + 1e-12), frames.to(device)
