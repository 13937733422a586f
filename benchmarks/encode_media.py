"""Encoding raw media: `encode_values` (threaded loading, batched encoding, cache) against a plain
one-item-at-a-time loop over the same encoder, on the real FSDD clips and digit images.

    python benchmarks/encode_media.py                 # 2000 WAVs + 1797 PNGs
    python benchmarks/encode_media.py --limit 200     # quick mode
    python benchmarks/encode_media.py --json out.json
    python benchmarks/encode_media.py --audio-accuracy  # does the audio embedding keep the word?

Rows: `{"name", "ours_s", "baseline", "baseline_s", "ratio"}` with ratio = baseline_s / ours_s.
"ours" for the speed row is a first build into an empty cache (hashing and storing included);
the cache row compares a rebuild from that cache with the first build.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from mmgraph.encoders import FeatureCache, encode_values, make_encoder  # noqa: E402
from mmgraph.utils import set_progress  # noqa: E402


def write_digit_pngs(digits_csv: Path, folder: Path, limit: int | None) -> list[str]:
    from PIL import Image

    paths = []
    with gzip.open(digits_csv, "rt") as f:
        for i, line in enumerate(f):
            if limit is not None and i >= limit:
                break
            vals = np.array([float(v) for v in line.split(",")[:64]], dtype=np.float32).reshape(8, 8)
            path = folder / f"digit_{i:04d}.png"
            Image.fromarray((255 - vals * 255 / 16).astype(np.uint8), "L").save(path)
            paths.append(str(path))
    return paths


def per_item_loop(encoder, paths: list[str]) -> float:
    start = time.perf_counter()
    for p in paths:
        encoder.encode([encoder.load(p)])
    return time.perf_counter() - start


def bench(name: str, encoder, paths: list[str], args, cache_dir: Path) -> list[dict]:
    encoder.encode([encoder.load(paths[0])])  # load weights / warm up kernels outside the timings
    start = time.perf_counter()
    first = encode_values(encoder, paths, batch_size=args.batch_size, num_workers=args.workers,
                          cache=FeatureCache(cache_dir))
    first_s = time.perf_counter() - start
    start = time.perf_counter()
    again = encode_values(encoder, paths, batch_size=args.batch_size, num_workers=args.workers,
                          cache=FeatureCache(cache_dir))
    rebuild_s = time.perf_counter() - start
    assert torch.equal(first.x, again.x) and bool(first.mask.all())
    loop_s = per_item_loop(encoder, paths)
    n = len(paths)
    return [
        {"name": f"{name}: encode_values, {n} items", "ours_s": first_s,
         "baseline": "per-item load+encode loop", "baseline_s": loop_s, "ratio": loop_s / first_s,
         "items_per_s": n / first_s, "baseline_items_per_s": n / loop_s},
        {"name": f"{name}: rebuild from cache, {n} items", "ours_s": rebuild_s, "baseline": "first build",
         "baseline_s": first_s, "ratio": first_s / rebuild_s, "items_per_s": n / rebuild_s,
         "baseline_items_per_s": n / first_s},
    ]


def audio_accuracy(recordings: Path) -> dict:
    """Logistic-regression digit accuracy on the audio embedding of all FSDD clips:
    (a) train takes 5-49 / test takes 0-4, (b) leave-one-speaker-out (mean and per speaker)."""
    from sklearn.linear_model import LogisticRegression

    files = sorted(recordings.glob("*.wav"))
    digit, speaker, take = zip(*[(int(d), s, int(t)) for d, s, t in (f.stem.split("_") for f in files)])
    digit, speaker, take = np.array(digit), np.array(speaker), np.array(take)
    x = encode_values(make_encoder("audio"), [str(f) for f in files]).x.numpy()

    def accuracy(train, test):
        model = LogisticRegression(max_iter=3000).fit(x[train], digit[train])
        return float(model.score(x[test], digit[test]))

    per_speaker = {s: accuracy(speaker != s, speaker == s) for s in sorted(set(speaker))}
    return {"takes_5_49_vs_0_4": accuracy(take >= 5, take < 5),
            "leave_one_speaker_out": float(np.mean(list(per_speaker.values()))), "per_speaker": per_speaker}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N items of each set")
    parser.add_argument("--quick", action="store_true", help="300 items of each set (unless --limit)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--only", choices=["audio", "speech", "image"], default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--audio-accuracy", action="store_true",
                        help="only measure the audio embedding's digit accuracy on FSDD (scikit-learn)")
    args = parser.parse_args()
    if args.quick and args.limit is None:
        args.limit = 300
    set_progress(False)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.audio_accuracy:
        print(json.dumps(audio_accuracy(args.data / "fsdd" / "recordings"), indent=2))
        return

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.only in (None, "audio"):
            wavs = sorted(str(p) for p in (args.data / "fsdd" / "recordings").glob("*.wav"))[: args.limit]
            encoder = make_encoder("audio").to(args.device)
            rows += bench("audio (FSDD WAV)", encoder, wavs, args, tmp / "cache-audio")
        if args.only in (None, "speech"):
            wavs = sorted(str(p) for p in (args.data / "fsdd" / "recordings").glob("*.wav"))[: args.limit]
            encoder = make_encoder("audio", "speech").to(args.device)
            rows += bench("audio speech (FSDD WAV)", encoder, wavs, args, tmp / "cache-speech")
        if args.only in (None, "image"):
            (tmp / "png").mkdir()
            pngs = write_digit_pngs(args.data / "digits" / "digits.csv.gz", tmp / "png", args.limit)
            encoder = make_encoder("image").to(args.device)
            rows += bench("image (digits PNG)", encoder, pngs, args, tmp / "cache-image")

    print(f"torch threads: {torch.get_num_threads()}, loader threads: {args.workers}, "
          f"batch: {args.batch_size}, device: {args.device}")
    header = ("workload", "ours s", "items/s", "baseline", "base s", "items/s", "ratio")
    print("{:46s} {:>8s} {:>9s}  {:27s} {:>8s} {:>9s} {:>7s}".format(*header))
    for r in rows:
        print(f"{r['name']:46s} {r['ours_s']:8.2f} {r['items_per_s']:9.1f}  {r['baseline']:27s} "
              f"{r['baseline_s']:8.2f} {r['baseline_items_per_s']:9.1f} {r['ratio']:6.1f}x")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
