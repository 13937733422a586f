"""benchmarks/datasets.py: the manifest writers give mmgraph graphs of the published sizes."""
from __future__ import annotations

import pytest
import torch

from mmgraph.data.builder import build_graph
from mmgraph.errors import InputError

from bench_modules import load_bench_module

writers = load_bench_module("datasets")


def test_umls_manifest_gives_the_published_graph(shared_data, tmp_path):
    graph = build_graph(writers.write_manifest("umls", tmp_path, data=shared_data), device="cpu")
    assert graph.node_types == ["entity"]
    assert graph["entity"].num_nodes == 135
    assert len(graph.edge_types) == 46
    splits = torch.cat([graph[et].split for et in graph.edge_types])
    assert torch.bincount(splits, minlength=3).tolist() == [5216, 652, 661]


def test_text_manifests_give_every_entity_its_text(shared_data, tmp_path):
    import yaml

    manifest = yaml.safe_load(writers.write_manifest("umls_text", tmp_path, data=shared_data).read_text())
    entity = manifest["nodes"]["entity"]
    assert entity["features"] == {"gloss": {"modality": "text", "column": "text"}}
    rows = (tmp_path / "umls_text" / entity["table"]).read_text().splitlines()
    assert len(rows) == 1 + 135 and all(row.split("\t")[-1] for row in rows[1:])


def test_cora_manifest_gives_the_published_graph(shared_data, tmp_path):
    graph = build_graph(writers.write_manifest("cora", tmp_path, data=shared_data), device="cpu")
    paper = graph["paper"]
    assert paper.num_nodes == 2708
    assert tuple(paper.words.shape) == (2708, 1433)
    assert set(paper.words.unique().tolist()) == {0.0, 1.0}   # bag of words, used as given
    assert graph.edge_types == [("paper", "cites", "paper")]
    edges = graph["paper", "cites", "paper"].edge_index
    assert edges.size(1) == 5278
    assert bool((edges[0] < edges[1]).all())                   # each undirected edge once, no self loops
    assert getattr(graph["paper", "cites", "paper"], "split", None) is None  # mmgraph draws the split


def test_cora_rows_follow_the_test_index(shared_data):
    features, _ = writers.load_cora(shared_data / "cora")
    test_index = [int(v) for v in (shared_data / "cora" / "ind.cora.test.index").read_text().split()]
    import pickle

    with open(shared_data / "cora" / "ind.cora.tx", "rb") as f:
        tx = pickle.load(f, encoding="latin1").toarray()
    # the i-th row of tx belongs to the node named by the i-th line of test.index
    assert (features[test_index[0]] == tx[0]).all() and (features[test_index[-1]] == tx[-1]).all()


def test_unknown_dataset_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="unknown dataset 'fb15k'"):
        writers.write_manifest("fb15k", tmp_path)
