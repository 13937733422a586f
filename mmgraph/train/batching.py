"""Full-batch or neighbour-sampled mini-batch training: the "auto" rule.

Full-batch training embeds every node at every step; its memory grows with the graph. The
estimate below counts the activations one full-batch step keeps for its backward pass (the
features themselves are needed in both modes and are not counted):

    bytes = 4 * channels * N * (slots + 8 + 15 * layers)          node activations
          + 16 * channels * layers * sum_et N_dst(et)               per message edge type: its aggregate,
                                                                   projection and their gradients
          + E_mp * (48 + 32 * layers * a)                          per message edge (CSR, messages)
          + 12 * B * (N_src + N_dst)  per relation group           1-N logits, both directions

with N all nodes, slots the most feature slots of any type plus one, E_mp the message edges
(training edges and their reverses), a = 2 * heads for HGT's attention and 1 otherwise, B the
batch size (or the group's supervised edges, when fewer). Under bf16 autocast (`precision`) the
terms shrink by 0.75, 1/3, 1 and 0.8 in that order: matrix products keep bf16 outputs, weights,
their gradients and optimiser state, softmax and norms stay float32 (fitted to steps measured
2026-12-04: the recipe at rank 500 on WN18RR and at rank 1000 on the 250-relation graph, 1.1-1.2
GB and 0.54-0.58 GB, and a 2-layer SAGE over each, 5.2-5.5 GB against 8.3 GB in float32 and
4.9-5.6 GB against 16.1 GB). The constants come from measured peaks of one step on synthetic graphs (100k-300k
nodes, 1M edges, SAGE / HGT, BCE / 1-N; docs/design.md), rounded up; the per-edge-type term from
a 250-relation graph whose step took 14.8 GB (`benchmarks/memory_estimate.py` checks every term
against measured peaks: within 1.5x on the shared sets and that graph). "auto" picks full-batch when the
estimate fits the budget: `memory_budget_gb`, else half of the available RAM on CPU
(MemAvailable: other processes share the machine) or 80 % of the free CUDA memory.
"""
from __future__ import annotations

import os

import torch

from mmgraph.data.naming import reverse_edge_type
from mmgraph.train.config import TrainConfig
from mmgraph.train.optim import resolve_precision

__all__ = ["DEFAULT_FANOUT", "resolved_fanouts", "full_batch_bytes", "inference_bytes", "memory_budget_bytes",
           "choose_batching"]

DEFAULT_FANOUT = 10


def resolved_fanouts(config: TrainConfig) -> list[int]:
    """The sampled in-neighbours per layer: `config.fanouts`, or DEFAULT_FANOUT per layer."""
    return list(config.fanouts) or [DEFAULT_FANOUT] * config.model.num_layers


def _sizes(prepared) -> tuple[int, int, int]:
    """(all nodes, message edges with reverses, most feature slots of a node type)."""
    nodes = sum(prepared.num_nodes.values())
    edges = 2 * sum(int(s.train.numel()) for s in prepared.splits.values())
    slots = max((len(f) + 1 for f in prepared.x_dict.values()), default=1)   # + a learned slot
    return nodes, edges, slots


def _message_edge_types(prepared) -> list[tuple[tuple[str, str, str], int]]:
    """(edge type, training edges) of every message-passing type, reverses included."""
    out = []
    for et, split in prepared.splits.items():
        n = int(split.train.numel())
        if n:
            out += [(et, n), (reverse_edge_type(et), n)]
    return out


# What each term of the estimate keeps under bf16 autocast (module doc): nodes, edge types, edges, 1-N.
BF16_SHARES = (0.75, 1 / 3, 1.0, 0.8)


def full_batch_bytes(prepared, config: TrainConfig, *, precision: str = "fp32") -> int:
    """Estimated activation bytes of one full-batch training step (the formula of the module doc);
    `precision` is the step's, resolved ("fp32" or "bf16")."""
    nodes, edges, slots = _sizes(prepared)
    m = config.model
    attention = 2 * m.heads if m.conv == "hgt" else 1
    terms = [4 * m.channels * nodes * (slots + 8 + 15 * m.num_layers), 0, 0, 0]
    if m.num_layers:
        terms[1] = 16 * m.channels * m.num_layers * sum(prepared.num_nodes[et[2]] for et, _ in _message_edge_types(prepared))
        terms[2] = edges * (48 + 32 * m.num_layers * attention)
    if config.loss == "1-n":
        from mmgraph.train.config import supervision_ratio

        supervised: dict[tuple[str, str], float] = {}
        for et in prepared.relations:   # a step's batch is never larger than the group's supervised edges
            ends = (et[0], et[2])
            supervised[ends] = supervised.get(ends, 0.0) + supervision_ratio(config) * int(prepared.splits[et].train.numel())
        terms[3] = sum(12 * min(config.batch_size, max(1, int(n))) * (prepared.num_nodes[s] + prepared.num_nodes[d])
                       for (s, d), n in supervised.items())
    shares = BF16_SHARES if precision == "bf16" else (1.0,) * 4
    return int(sum(term * share for term, share in zip(terms, shares)))


def inference_bytes(prepared, channels: int, num_layers: int) -> int:
    """Estimated bytes of embedding every node at once without gradients (kept: two layers' states)."""
    nodes, edges, slots = _sizes(prepared)
    return int(4 * channels * nodes * (slots + 6) + (24 * edges if num_layers else 0))


def memory_budget_bytes(device: torch.device, config_gb: float = 0.0) -> int:
    """`config_gb` when given, else 80 % of free CUDA memory, or half of the available RAM."""
    if config_gb > 0:
        return int(config_gb * 2 ** 30)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(0.8 * free)
    return int(0.5 * _available_ram())


def _available_ram() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4 * 2 ** 30   # unknown platform: assume a small machine


def choose_batching(prepared, config: TrainConfig, device: torch.device, *,
                    budget_bytes: int | None = None) -> tuple[str, str]:
    """("full" | "mini", why): an explicit `config.batching` wins; "auto" compares the
    full-batch estimate with the budget (`budget_bytes` overrides the detected one)."""
    if config.batching != "auto":
        return config.batching, f"batching: {config.batching} in the config"
    precision = resolve_precision(config.precision, device)
    need = full_batch_bytes(prepared, config, precision=precision)
    budget = budget_bytes if budget_bytes is not None else memory_budget_bytes(device, config.memory_budget_gb)
    gb, step = 2 ** 30, " (bf16 steps)" if precision == "bf16" else ""
    if need <= budget:
        return "full", f"full-batch activations ~{need / gb:.2f} GB{step} fit the budget of {budget / gb:.2f} GB"
    return "mini", f"full-batch activations ~{need / gb:.2f} GB{step} exceed the budget of {budget / gb:.2f} GB"
