"""Filtered full ranking at FB15k-237 scale: mmgraph's `filtered_ranks` against plain torch loops.

The workload: 14,541 entities, 237 relations, d = 200, random DistMult embeddings
(score(h, r, t) = <e_h, w_r, e_t>), ~310k true triples as the filter (FB15k-237's train + valid +
test count) and 20,466 test triples ranked in both directions, relation by relation, as
`mmgraph evaluate` does. Rows (also written with --json FILE):

  name        what is measured ("filtered_ranks")
  ours_s      wall-clock seconds of mmgraph's filtered ranking (FilterIndex build included)
  baseline    the other implementation; baseline_s its seconds; ratio = baseline_s / ours_s
              (> 1: ours is faster). "gemm-only" is the ceiling: scoring every candidate and
              nothing else, so its ratio is the share of the ceiling that ranking reaches.
  ours_cpu_s, baseline_cpu_s: process CPU seconds of the same runs (on a shared machine
              these say more than wall-clock time; with --threads 1 they are the
              uncontended time).

Baselines: "dense-mask" (per chunk a [B, C] bool filter, masked_fill -inf, two comparisons),
"argsort" (per chunk the masked scores fully sorted; the rank is the answer's position, ties by
sort order), "gemm-only", and PyKEEN's RankBasedEvaluator when pykeen is importable. A
baseline row counts only if it computes the same thing: dense-mask must give identical ranks,
and PyKEEN's realistic MRR / Hits@1,3,10 (both directions) must match ours from the same
embeddings within 1e-4, else the row has status "failed" and the script exits 1. Without
pykeen the PyKEEN row is written with status "skipped" and no time.

    python benchmarks/ranking.py [--quick] [--json FILE]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mmgraph.eval.ranking import FilterIndex, filtered_ranks  # noqa: E402


def make_workload(num_entities: int, num_relations: int, num_true: int, num_test: int, dim: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    # skewed relation sizes like FB15k-237's (a few relations hold most triples)
    weights = 1.0 / torch.arange(1, num_relations + 1).double() ** 1.1
    rel = torch.multinomial(weights, num_true, replacement=True, generator=g)
    heads = torch.randint(num_entities, (num_true,), generator=g)
    tails = torch.randint(num_entities, (num_true,), generator=g)
    test = torch.randperm(num_true, generator=g)[:num_test]
    entity = torch.randn(num_entities, dim, generator=g)
    relation = torch.randn(num_relations, dim, generator=g)
    return rel, heads, tails, test, entity, relation


def per_relation(rel, heads, tails, test, num_entities):
    """[(relation id, all edges [2, T_r], test edges [2, Q_r])] for relations with test edges."""
    out = []
    test_rel = rel[test]
    for r in test_rel.unique().tolist():
        all_edges = torch.stack([heads[rel == r], tails[rel == r]])
        t = test[test_rel == r]
        out.append((r, all_edges, torch.stack([heads[t], tails[t]])))
    return out


def rank_ours(groups, entity, relation, chunk_size):
    n = entity.size(0)
    ranks = []
    for r, all_edges, test_edges in groups:
        fi = FilterIndex.from_edges(all_edges, n, n)

        def score(q, w=relation[r]):
            return (entity[q] * w) @ entity.T     # DistMult: the same form for heads and tails

        heads, tails = test_edges
        ranks.append(filtered_ranks(score, heads, tails, fi, direction="tail", chunk_size=chunk_size))
        ranks.append(filtered_ranks(score, tails, heads, fi, direction="head", chunk_size=chunk_size))
    return torch.cat(ranks)


def rank_plain(groups, entity, relation, chunk_size, mode):
    """The textbook loop: per chunk a dense filter mask, masked_fill, then count or sort."""
    n = entity.size(0)
    ranks = []
    for r, all_edges, test_edges in groups:
        keys = (all_edges[0] * n + all_edges[1]).unique()
        for direction in ("tail", "head"):
            q_all, a_all = test_edges if direction == "tail" else test_edges.flip(0)
            # true answers per query: (query, candidate) pairs, sorted by query
            if direction == "tail":
                pair_q, pair_c = keys // n, keys % n
            else:
                pair_q, pair_c = keys % n, keys // n
            order = pair_q.argsort()
            pair_q, pair_c = pair_q[order], pair_c[order]
            for b in range(0, q_all.numel(), chunk_size):
                q, a = q_all[b:b + chunk_size], a_all[b:b + chunk_size]
                scores = (entity[q] * relation[r]) @ entity.T
                if mode == "gemm-only":
                    ranks.append(scores[:, 0].double())
                    continue
                lo, hi = torch.searchsorted(pair_q, q), torch.searchsorted(pair_q, q, right=True)
                count = hi - lo
                rows = torch.repeat_interleave(count)
                cols = pair_c[lo[rows] + torch.arange(rows.numel()) - (count.cumsum(0) - count)[rows]]
                mask = torch.zeros_like(scores, dtype=torch.bool)
                mask[rows, cols] = True
                mask[torch.arange(q.numel()), a] = False
                target = scores.gather(1, a.view(-1, 1))
                scores = scores.masked_fill(mask, float("-inf"))
                if mode == "dense-mask":
                    higher = (scores > target).sum(1)
                    at_least = (scores >= target).sum(1) - 1
                    ranks.append(1.0 + (higher + at_least).double() / 2)
                else:  # argsort
                    order = scores.argsort(dim=1, descending=True)
                    ranks.append((order == a.view(-1, 1)).nonzero()[:, 1].double() + 1)
    return torch.cat(ranks)


def timed(fn, repeat):
    """Best wall-clock seconds, the CPU seconds of that run, and the result."""
    best, cpu, out = float("inf"), float("inf"), None
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        out = fn()
        wall = time.perf_counter() - start
        if wall < best:
            best, cpu = wall, time.process_time() - start_cpu
    return best, cpu, out


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 10x smaller workload (for CI)")
    parser.add_argument("--json", type=Path, help="write the result rows to this file")
    parser.add_argument("--chunk-size", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=1, help="best of this many runs")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--baselines", default="dense-mask,argsort,gemm-only",
                        help="comma-separated: dense-mask, argsort, gemm-only")
    args = parser.parse_args(argv)
    unknown = set(args.baselines.split(",")) - {"dense-mask", "argsort", "gemm-only"}
    if unknown:
        parser.error(f"--baselines: unknown {sorted(unknown)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    scale = 10 if args.quick else 1
    n, n_rel, n_true, n_test, dim = 14541 // scale, 237, 310116 // scale, 20466 // scale, 200
    rel, heads, tails, test, entity, relation = make_workload(n, n_rel, n_true, n_test, dim, seed=0)
    groups = per_relation(rel, heads, tails, test, n)
    print(f"{n} entities, {len(groups)} relations with test edges, {n_true} true triples, "
          f"{2 * n_test} queries, d={dim}, {torch.get_num_threads()} threads", file=sys.stderr)

    ours_s, ours_cpu, ours = timed(lambda: rank_ours(groups, entity, relation, args.chunk_size), args.repeat)
    rows = []
    for mode in args.baselines.split(","):
        base_s, base_cpu, theirs = timed(lambda: rank_plain(groups, entity, relation, args.chunk_size, mode),
                                         args.repeat)
        if mode == "dense-mask" and not torch.equal(ours, theirs):
            raise SystemExit("dense-mask ranks differ from filtered_ranks: a bug")
        rows.append({"name": "filtered_ranks", "ours_s": round(ours_s, 3), "baseline": mode,
                     "baseline_s": round(base_s, 3), "ratio": round(base_s / ours_s, 3),
                     "ours_cpu_s": round(ours_cpu, 3), "baseline_cpu_s": round(base_cpu, 3)})
    if importlib.util.find_spec("pykeen") is None:
        print("pykeen is not installed: its RankBasedEvaluator row is skipped", file=sys.stderr)
        rows.append({"name": "filtered_ranks", "ours_s": round(ours_s, 3), "baseline": PYKEEN,
                     "baseline_s": None, "ratio": None, "status": "skipped",
                     "note": "pykeen is not installed: its ranks were neither compared nor timed"})
    else:
        rows.append(_pykeen_row(ours_s, ours, rel, heads, tails, test, entity, relation, args.chunk_size))
    mrr = float((1.0 / ours).mean())
    print(f"mrr of the random model: {mrr:.5f} over {ours.numel()} ranks", file=sys.stderr)
    for row in rows:
        print(json.dumps(row))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    failed = [row["baseline"] for row in rows if row.get("status") == "failed"]
    if failed:
        raise SystemExit(f"FAILED: {', '.join(failed)} disagree with filtered_ranks: "
                         + "; ".join(row["error"] for row in rows if row.get("status") == "failed"))
    return rows


PYKEEN = "pykeen RankBasedEvaluator"
METRICS_ATOL = 1e-4


def rank_metrics(ranks: torch.Tensor) -> dict[str, float]:
    """MRR and Hits@k of realistic (mean of optimistic and pessimistic) ranks."""
    ranks = ranks.double()
    return {"mrr": float((1.0 / ranks).mean()),
            **{f"hits@{k}": float((ranks <= k).double().mean()) for k in (1, 3, 10)}}


def compare_metrics(ours: dict[str, float], theirs: dict[str, float], atol: float = METRICS_ATOL) -> dict:
    """Row fields: both metric sets, and status "failed" with the differing ones unless all agree."""
    differ = [f"{k} {ours[k]:.6f} vs {theirs[k]:.6f}" for k in ours
              if not math.isclose(ours[k], theirs[k], abs_tol=atol)]
    fields = {"ours_metrics": ours, "baseline_metrics": theirs}
    if differ:
        return {**fields, "status": "failed", "error": "metrics differ: " + ", ".join(differ)}
    return {**fields, "status": "ok"}


def _pykeen_row(ours_s, ours, rel, heads, tails, test, entity, relation, chunk_size) -> dict:
    """PyKEEN's filtered evaluation of the same DistMult embeddings, timed and checked against ours."""
    from pykeen.evaluation import RankBasedEvaluator
    from pykeen.models import DistMult
    from pykeen.triples import CoreTriplesFactory

    mapped = torch.stack([heads, rel, tails], dim=1)
    factory = CoreTriplesFactory.create(mapped_triples=mapped, num_entities=entity.size(0),
                                        num_relations=relation.size(0))
    model = DistMult(triples_factory=factory, embedding_dim=entity.size(1))
    with torch.no_grad():
        model.entity_representations[0]._embeddings.weight.copy_(entity)
        model.relation_representations[0]._embeddings.weight.copy_(relation)
    start = time.perf_counter()
    result = RankBasedEvaluator(filtered=True).evaluate(model, mapped[test], batch_size=chunk_size,
                                                        additional_filter_triples=[mapped], use_tqdm=False)
    seconds = time.perf_counter() - start
    # "both.realistic": head and tail queries pooled, ties ranked as the mean, as filtered_ranks does
    theirs = {"mrr": float(result.get_metric("both.realistic.inverse_harmonic_mean_rank")),
              **{f"hits@{k}": float(result.get_metric(f"both.realistic.hits_at_{k}")) for k in (1, 3, 10)}}
    return {"name": "filtered_ranks", "ours_s": round(ours_s, 3), "baseline": PYKEEN,
            "baseline_s": round(seconds, 3), "ratio": round(seconds / ours_s, 3),
            **compare_metrics(rank_metrics(ours), theirs)}


if __name__ == "__main__":
    main()
