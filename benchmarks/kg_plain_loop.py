"""The outside baseline for mmgraph's knowledge-graph recipe: reciprocal ComplEx-N3 as a plain torch loop.

What Lacroix et al.'s kbc code does (Adagrad lr 0.1, N3 0.1, embeddings at std 1e-3, softmax
over every entity, queries of both directions shuffled together), written out in one file with
nothing of mmgraph, on a triple folder of ../shared/data/kg; prints the filtered validation MRR
(both directions, train and valid triples filtered) after each epoch. `--pairs` puts both
directions of the same edges side by side in a batch, as mmgraph did before 2026-12-03.

    python benchmarks/kg_plain_loop.py --data ../shared/data/kg/WN18RR --epochs 3
    python benchmarks/kg_plain_loop.py --data ../shared/data/kg/WN18RR --epochs 1 --pairs
"""
from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import torch
import torch.nn.functional as F

from mmgraph.runtime import keep_freed_memory


def read_triples(folder: Path) -> dict[str, list[list[str]]]:
    return {split: [line.strip().split("\t") for line in (folder / f"{split}.txt").read_text().splitlines()
                    if line.strip()] for split in ("train", "valid", "test")}


class ComplEx(torch.nn.Module):
    def __init__(self, entities: int, relations: int, rank: int, init: float):
        super().__init__()
        self.rank = rank
        self.ent = torch.nn.Embedding(entities, 2 * rank)
        self.rel = torch.nn.Embedding(relations, 2 * rank)
        with torch.no_grad():
            self.ent.weight.mul_(init)
            self.rel.weight.mul_(init)

    def forward(self, h: torch.Tensor, r: torch.Tensor):
        """Scores of every tail entity [B, N] and the N3 factors (moduli of head and relation)."""
        k = self.rank
        lhs, rel = self.ent(h), self.rel(r)
        a, b, c, d = lhs[:, :k], lhs[:, k:], rel[:, :k], rel[:, k:]
        query = torch.cat([a * c - b * d, a * d + b * c], 1)
        return query @ self.ent.weight.t(), (torch.sqrt(a ** 2 + b ** 2), torch.sqrt(c ** 2 + d ** 2))

    def modulus(self, t: torch.Tensor) -> torch.Tensor:
        rhs = self.ent(t)
        return torch.sqrt(rhs[:, :self.rank] ** 2 + rhs[:, self.rank:] ** 2)


def valid_mrr(model: ComplEx, queries: torch.Tensor, known: dict) -> float:
    ranks = []
    with torch.no_grad():
        for start in range(0, len(queries), 500):
            batch = queries[start:start + 500]
            scores, _ = model(batch[:, 0], batch[:, 1])
            target = scores[torch.arange(len(batch)), batch[:, 2]].clone()
            for i, (h, r, t) in enumerate(batch.tolist()):
                others = torch.tensor(sorted(known[(h, r)] - {t}), dtype=torch.long)
                if len(others):
                    scores[i, others] = float("-inf")
            ranks.append(1.0 + (scores > target[:, None]).sum(1).float())
    return float((1.0 / torch.cat(ranks)).mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--rank", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=100, help="queries a step (kbc's default)")
    parser.add_argument("--init", type=float, default=1e-3)
    parser.add_argument("--reg", type=float, default=0.1)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--pairs", action="store_true", help="both directions of an edge in the same batch")
    args = parser.parse_args(argv)
    keep_freed_memory()   # as mmgraph's training does: the comparison is of the method, not the allocator
    torch.manual_seed(0)
    raw = read_triples(args.data)
    names = sorted({e for rows in raw.values() for h, _, t in rows for e in (h, t)})
    ent = {e: i for i, e in enumerate(names)}
    rels = {r: i for i, r in enumerate(sorted({r for _, r, _ in raw["train"]}))}
    nr = len(rels)
    triples = {s: torch.tensor([[ent[h], rels[r], ent[t]] for h, r, t in rows if r in rels])
               for s, rows in raw.items()}
    train, valid = triples["train"], triples["valid"]
    inverse = lambda x: torch.stack([x[:, 2], x[:, 1] + nr, x[:, 0]], 1)  # noqa: E731
    queries, valid_queries = torch.cat([train, inverse(train)]), torch.cat([valid, inverse(valid)])
    known = defaultdict(set)
    for h, r, t in torch.cat([train, valid]).tolist():
        known[(h, r)].add(t)
        known[(t, r + nr)].add(h)
    model = ComplEx(len(names), 2 * nr, args.rank, args.init)
    optimizer = torch.optim.Adagrad(model.parameters(), lr=args.lr)
    for epoch in range(1, args.epochs + 1):
        started, total, steps = time.perf_counter(), 0.0, 0
        if args.pairs:
            edges = torch.randperm(len(train)).view(-1, 1)
            order = torch.cat([queries[edges], queries[edges + len(train)]], 1).view(-1, 3)
        else:
            order = queries[torch.randperm(len(queries))]
        for start in range(0, len(order), args.batch_size):
            batch = order[start:start + args.batch_size]
            scores, (lhs, rel) = model(batch[:, 0], batch[:, 1])
            n3 = (lhs ** 3 + rel ** 3 + model.modulus(batch[:, 2]) ** 3).sum() / len(batch)
            loss = F.cross_entropy(scores, batch[:, 2]) + args.reg * n3
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, steps = total + float(loss.detach()), steps + 1
        seconds = time.perf_counter() - started
        print(f"epoch {epoch}  loss {total / steps:.3f}  valid MRR {valid_mrr(model, valid_queries, known):.4f}  "
              f"{seconds:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
