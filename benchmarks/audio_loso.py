"""Speaker invariance of the packaged audio encoders: leave-one-speaker-out digit accuracy on FSDD.

Every FSDD clip (4 speakers x 10 digits x 50 takes, ../shared/data/fsdd/recordings) is encoded;
a linear probe (standardised features, logistic regression) is trained on three speakers and
tested on the fourth, for each speaker in turn. Also the held-out-takes accuracy of known speakers
(train takes 5-49, test takes 0-4), and the leave-one-speaker-out accuracy of a majority vote of
the 8 cosine-nearest clips of the other speakers (takes 0-15, the demo graph's), which is what
the builder's kNN relation and cold-start items go by. `--set key=value` overrides encoder options, e.g.

    python benchmarks/audio_loso.py                      # the signal-processing default
    python benchmarks/audio_loso.py --encoder speech     # Google's pretrained speech embedding
    python benchmarks/audio_loso.py --set lifter=0 --takes 16
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

FSDD = Path(__file__).resolve().parents[2] / "shared" / "data" / "fsdd" / "recordings"
SPEAKERS = ("george", "jackson", "lucas", "nicolas")


def encode_fsdd(options: dict, takes: int = 50,
                encoder: str = "default") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(features [N, d], digit [N], speaker index [N], take [N]) of FSDD with the given encoder options."""
    from mmgraph.encoders import encode_values, make_encoder

    rows = [(d, s, t) for s in range(len(SPEAKERS)) for d in range(10) for t in range(takes)]
    paths = [str(FSDD / f"{d}_{SPEAKERS[s]}_{t}.wav") for d, s, t in rows]
    encoder = make_encoder("audio", encoder, **options)
    x = encode_values(encoder, paths, batch_size=64, num_workers=2, desc="fsdd").x.numpy()
    digit, speaker, take = (np.array(c) for c in zip(*rows))
    return x, digit, speaker, take


def probe(x_train, y_train, x_test, y_test) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x_train)
    clf = LogisticRegression(max_iter=2000, C=1.0).fit(scaler.transform(x_train), y_train)
    return float((clf.predict(scaler.transform(x_test)) == y_test).mean())


def knn_vote(x, digit, speaker, take, held_out: int, k: int = 8, takes: int = 16) -> float:
    """Share of the held-out speaker's clips whose k cosine-nearest other-speaker clips vote their digit."""
    import torch
    import torch.nn.functional as F

    x = torch.as_tensor(x)
    graph = (speaker != held_out) & (take < takes)
    query = (speaker == held_out) & (take < takes)
    sim = F.normalize(x[query], dim=1) @ F.normalize(x[graph], dim=1).T
    votes = torch.as_tensor(digit[graph])[sim.topk(k, dim=1).indices]
    return float((torch.mode(votes, dim=1).values.numpy() == digit[query]).mean())


def loso_accuracy(options: dict, takes: int = 50, encoder: str = "default") -> dict:
    started = time.perf_counter()
    x, digit, speaker, take = encode_fsdd(options, takes, encoder)
    encode_s = time.perf_counter() - started
    per_speaker = {name: probe(x[speaker != s], digit[speaker != s], x[speaker == s], digit[speaker == s])
                   for s, name in enumerate(SPEAKERS)}
    knn = {name: knn_vote(x, digit, speaker, take, s) for s, name in enumerate(SPEAKERS)}
    known = probe(x[take >= 5], digit[take >= 5], x[take < 5], digit[take < 5])
    return {"encoder": encoder, "options": options, "dim": int(x.shape[1]),
            "loso_mean": float(np.mean(list(per_speaker.values()))),
            "loso": per_speaker, "knn_loso_mean": float(np.mean(list(knn.values()))), "knn_loso": knn,
            "known_speakers": known, "encode_s": encode_s, "clips": int(len(x))}


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--encoder", default="default", help="registered audio encoder (default, speech)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="an encoder option")
    parser.add_argument("--takes", type=int, default=50, help="takes per digit and speaker (default 50)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    options = {k: _value(v) for k, v in (s.split("=", 1) for s in args.set)}
    result = loso_accuracy(options, args.takes, args.encoder)
    loso = "  ".join(f"{k} {v:.3f}" for k, v in result["loso"].items())
    knn = "  ".join(f"{k} {v:.3f}" for k, v in result["knn_loso"].items())
    print(f"{args.encoder} {options or 'defaults'}: LOSO mean {result['loso_mean']:.3f} ({loso}); "
          f"8-NN vote LOSO mean {result['knn_loso_mean']:.3f} ({knn}); known speakers "
          f"{result['known_speakers']:.3f}; dim {result['dim']}; encoded {result['clips']} clips in "
          f"{result['encode_s']:.1f} s")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
