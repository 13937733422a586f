"""The plain-loop baseline of the knowledge-graph recipe runs on real triples and learns."""
from __future__ import annotations

import re

from bench_modules import load_bench_module


def test_plain_complex_n3_loop_learns_umls_in_one_epoch(shared_data, capsys):
    loop = load_bench_module("kg_plain_loop")
    assert loop.main(["--data", str(shared_data / "kg" / "umls"), "--epochs", "1", "--rank", "50"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    mrr = float(re.search(r"valid MRR ([0-9.]+)", line).group(1))
    assert mrr > 0.25        # a random ranking of 135 entities scores about 0.04
