"""The README's Python example: build the demo graph, train, evaluate, use a layer on its own."""
import torch

import mmgraph
from mmgraph.eval.evaluate import evaluate_split, metrics_table
from mmgraph.nn import HGTConv  # layers are importable on their own
from mmgraph.train.config import TrainConfig
from mmgraph.train.prepare import prepare_graph
from mmgraph.train.trainer import build_model, embed_for_eval, fit

graph = mmgraph.build_graph("datasets/digits-av/manifest.yaml")  # encodes every WAV, PNG and word
config = TrainConfig.from_dict({"epochs": 100, "lr": 0.003, "relations": ["says", "shows"],
                                "model": {"channels": 64, "embedding_norm": 3.0}})
prepared = prepare_graph(graph, relations=config.relations)  # splits fixed; reverse edges train-only
model = build_model(config, prepared)
fit(model, prepared, config, device=torch.device("cpu"))
z = embed_for_eval(model, prepared, torch.device("cpu"))
print(metrics_table(evaluate_split(model, prepared, z, split="test")))

conv = HGTConv(64, 64, graph.metadata(), heads=2)  # in your own model: dict in, dict out
out = conv({t: torch.randn(graph[t].num_nodes, 64) for t in graph.node_types}, graph.edge_index_dict)
print({t: tuple(v.shape) for t, v in out.items()})
