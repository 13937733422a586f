"""benchmarks/trim_step.py on a small graph: its rows, the equivalence gate, the gather count."""
import torch

from bench_modules import load_bench_module


def test_rows_are_gated_on_equal_seed_embeddings(tmp_path):
    torch.set_num_threads(1)
    trim_step = load_bench_module("trim_step")
    rows = trim_step.main(["--nodes", "3000", "--edges", "30000", "--dim", "16", "--batch-size", "256",
                           "--steps", "1", "--json", str(tmp_path / "rows.json")])
    assert [r["name"] for r in rows] == ["trim_step.step", "trim_step.gather_share", "trim_step.epoch"]
    for row in rows:
        assert row["equal"] is True and "status" not in row and row["ours_s"] > 0 and row["baseline_s"] > 0
    share = rows[1]
    assert 0 < share["share_pct"] < 100 and share["rows_gathered"] > 0
    assert rows[2]["extrapolated"] is True and rows[2]["epoch_steps"] >= 1
    assert (tmp_path / "rows.json").is_file()


def test_rows_gathered_counts_nodes_and_each_layers_edges():
    trim_step = load_bench_module("trim_step")

    class Sub:
        n_id = {"a": torch.arange(7), "b": torch.arange(3)}
        num_sampled_edges = {("a", "to", "b"): [4, 6], ("b", "to", "a"): [2, 5]}
    # layer 0 reads hops 1-2 (17 edges), layer 1 hop 1 (6 edges)
    assert trim_step.rows_gathered(Sub, 2) == 10 + 17 + 6
