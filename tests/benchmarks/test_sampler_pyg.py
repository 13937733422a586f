"""benchmarks/sampler_pyg.py on a small graph: the torch-sparse row where it is installed (its
first-hop check passed), a skipped row with the reason where it is not."""
import importlib.util

import pytest
import torch

from bench_modules import load_bench_module

SMALL = ["--nodes", "3000", "--edges", "30000", "--dim", "8", "--batch-size", "256", "--steps", "2"]
HAS_TORCH_SPARSE = importlib.util.find_spec("torch_sparse") is not None


@pytest.mark.skipif(not HAS_TORCH_SPARSE, reason="torch-sparse is not installed (benchmarks/README.md)")
def test_row_against_torch_sparse(tmp_path):
    torch.set_num_threads(1)
    rows = load_bench_module("sampler_pyg").main([*SMALL, "--json", str(tmp_path / "rows.json")])
    (row,) = rows
    assert row["name"] == "sampler_pyg.sample" and "status" not in row
    assert row["ours_s"] > 0 and row["baseline_s"] > 0 and row["steps"] == 2
    assert row["sampled_nodes"] >= row["seeds"] > 0 and row["sampled_edges"] > 0
    assert (tmp_path / "rows.json").is_file()


@pytest.mark.skipif(HAS_TORCH_SPARSE, reason="torch-sparse is installed: the row is measured")
def test_row_is_skipped_with_its_reason_without_torch_sparse(tmp_path):
    (row,) = load_bench_module("sampler_pyg").main([*SMALL, "--json", str(tmp_path / "rows.json")])
    assert row["status"] == "skipped" and "torch-sparse" in row["error"] and row["ours_s"] is None
