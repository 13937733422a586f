"""mmgraph.utils.gather_rows: the row gather whose backward is the same on every run."""
from __future__ import annotations

import torch

from mmgraph.utils import gather_rows


def test_gather_rows_is_indexing_with_a_deterministic_backward_on_two_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(300, 64, generator=generator)
        index = torch.randint(0, 300, (20_000,), generator=generator)   # rows repeat
        upstream = torch.randn(20_000, 64, generator=generator)
        grads = []
        for _ in range(4):
            leaf = x.clone().requires_grad_()
            out = gather_rows(leaf, index)
            assert torch.equal(out, x[index])
            out.backward(upstream)
            grads.append(leaf.grad)
        assert all(torch.equal(grads[0], g) for g in grads[1:])
        torch.testing.assert_close(grads[0], torch.zeros_like(x).index_add_(0, index, upstream))
    finally:
        torch.set_num_threads(threads)
