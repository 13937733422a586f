"""Cold start reads the kNN k the builder recorded, and guesses it only for graphs built before."""
from __future__ import annotations

import logging

import torch
from torch_geometric.data import HeteroData

from mmgraph.data.builder import build_graph
from mmgraph.eval.cold_start import neighbour_count

ET = ("item", "similar_vec", "item")


def test_recorded_k_is_used_and_old_graphs_fall_back_to_the_guess(tmp_path, caplog):
    (tmp_path / "items.csv").write_text("id,vec\na,1 0\nb,0.9 0.1\nc,0 1\nd,0.1 0.9\ne,0.5 0.5\n")
    manifest = {"name": "t", "nodes": {"item": {"table": "items.csv", "id": "id",
                                                "features": {"vec": {"modality": "vector", "column": "vec"}},
                                                "knn": {"feature": "vec", "k": 2}}}}
    graph = build_graph(manifest, root=tmp_path, device="cpu")
    edges = graph[ET].edge_index
    assert neighbour_count(graph, ET, edges) == 2
    graph.mmgraph["knn"][0]["k"] = 3  # the record wins over the edges (here: 2 per node)
    assert neighbour_count(graph, ET, edges) == 3
    old = HeteroData()
    old.mmgraph = {k: v for k, v in graph.mmgraph.items() if k != "knn"}
    with caplog.at_level(logging.INFO, logger="mmgraph"):
        assert neighbour_count(old, ET, edges) == 2  # E / distinct sources
    assert "no kNN record" in caplog.text
    assert neighbour_count(old, ET, torch.tensor([[0, 0, 0, 1, 1, 1], [1, 2, 3, 0, 2, 3]])) == 3
