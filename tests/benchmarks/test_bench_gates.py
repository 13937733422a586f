"""Benchmark rows that compare against a baseline fail when the outputs disagree."""
from __future__ import annotations

import torch
from bench_modules import BENCH, load_bench_module

hetero = load_bench_module("hetero_layer")
ranking = load_bench_module("ranking")


def test_hetero_layer_row_fails_beyond_the_tolerance():
    ok = hetero.agreement({"max_abs_diff": 2e-5, "ref_max_abs": 3.0})
    assert ok == {"max_abs_diff": 2e-5, "status": "ok"}
    bad = hetero.agreement({"max_abs_diff": 0.1, "ref_max_abs": 3.0})
    assert bad["status"] == "failed" and "disagree with PyG" in bad["error"]
    assert hetero.agreement({"max_abs_diff": float("nan"), "ref_max_abs": 3.0})["status"] == "failed"
    missing = hetero.agreement({"error": "CUDA out of memory"})
    assert missing["status"] == "failed" and "did not run: CUDA out of memory" in missing["error"]


def test_ranking_metrics_must_match_the_baseline():
    ranks = torch.tensor([1.0, 2.5, 4.0, 20.0])
    ours = ranking.rank_metrics(ranks)
    assert ours == {"mrr": (1 + 1 / 2.5 + 1 / 4 + 1 / 20) / 4, "hits@1": 0.25, "hits@3": 0.5, "hits@10": 0.75}
    assert ranking.compare_metrics(ours, dict(ours))["status"] == "ok"
    off = ranking.compare_metrics(ours, {**ours, "hits@10": 0.5})
    assert off["status"] == "failed" and off["error"] == "metrics differ: hits@10 0.750000 vs 0.500000"


def test_quality_prints_no_hand_typed_pykeen_numbers(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))  # quality.py imports its sibling common.py
    quality = load_bench_module("quality")
    rows = [{"dataset": name, "tag": "t", "mrr": 0.5, "hits@1": 0.4, "hits@10": 0.6, "auc": 0.9, "ap": 0.9,
             "wall_s": 10.0, "met": True, **{k: t[k] for k in ("metric", "target", "budget_s", "published")}}
            for name, t in quality.TARGETS.items()]
    table = quality.format_table(rows)
    assert "ConvE .94 MRR" in table and "pykeen" not in table.lower()


def test_encode_media_row_fails_when_batched_features_differ_and_counts_conv_flops():
    encode_media = load_bench_module("encode_media")
    assert "status" not in encode_media.gate({"name": "x"}, 1e-6)
    bad = encode_media.gate({"name": "x"}, 1e-2)
    assert bad["status"] == "failed" and "differ from the loop's" in bad["error"]
    assert encode_media.gate({"name": "x"}, float("nan"))["status"] == "failed"
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1),
                               torch.nn.Conv2d(8, 8, 3, padding=1, groups=8))
    # 2 x (8 x 4 x 4 outputs x 27 + 8 x 4 x 4 outputs x 9) per image
    assert encode_media.conv_flops(conv, torch.zeros(2, 3, 4, 4)) == 2 * (128 * 27 + 128 * 9)
    assert encode_media.gemm_gflops(size=64, repeat=2) > 0
