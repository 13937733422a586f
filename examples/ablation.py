"""Media features vs learned embeddings only, on the demo graph (the TARGETS.md ablation).

    python examples/ablation.py [--seeds 3]
"""
import argparse
import statistics

import torch

import mmgraph
from mmgraph.train.presets import DEMO_TRAIN, demo_dataset
from mmgraph.eval.evaluate import evaluate_split
from mmgraph.train.config import TrainConfig
from mmgraph.train.prepare import prepare_graph
from mmgraph.train.trainer import build_model, embed_for_eval, fit
from mmgraph.utils import set_progress


def test_hits(graph, settings: dict) -> dict[str, float]:
    config = TrainConfig.from_dict(settings)
    prepared = prepare_graph(graph, relations=config.relations, seed=config.seed, use_features=config.use_features)
    model = build_model(config, prepared)
    fit(model, prepared, config, device=torch.device("cpu"), evaluate=evaluate_split)
    z = embed_for_eval(model, prepared, torch.device("cpu"))
    result = evaluate_split(model, prepared, z, split="test", with_classification=False)
    return {key: row["hits@1"] for key, row in result["relations"].items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    set_progress(False)
    torch.set_num_threads(1)
    graph = mmgraph.build_graph(demo_dataset() / "manifest.yaml")
    rows = {}
    for label, use in (("media features", True), ("learned embeddings only", False)):
        runs = [test_hits(graph, {**DEMO_TRAIN, "seed": s, "use_features": use}) for s in range(args.seeds)]
        for key in runs[0]:
            values = [r[key] for r in runs]
            rows[(label, key)] = (statistics.mean(values), statistics.pstdev(values))
    print(f"{'model':<26}{'relation':<20}test Hits@1 (mean ± sd over {args.seeds} seeds)")
    for (label, key), (mean, sd) in rows.items():
        print(f"{label:<26}{key:<20}{mean:.3f} ± {sd:.3f}")


if __name__ == "__main__":
    main()
