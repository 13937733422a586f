"""Cold-start training: held-out nodes never reach a training or message edge; edge-less steps;
brand-new items through `predict --items` on a run trained with both."""
from __future__ import annotations

import json

import pytest
import torch

import mmgraph
from mmgraph.cli.main import main
from mmgraph.data.graph_io import write_graph
from mmgraph.errors import InputError
from mmgraph.eval.cold_start import attach_neighbours
from mmgraph.train.inductive import cold_start_messages, hold_out_nodes
from mmgraph.train.prepare import prepare_graph
from mmgraph.train.splits import EdgeSplit

from tiny_media_graph import write_tiny_graph

SAYS, BY, SIM = ("clip", "says", "word"), ("clip", "by", "speaker"), ("clip", "similar_x", "clip")


def _toy():
    """6 clips, 3 words, 2 speakers, a kNN-like clip relation; clip 5's edge is a test edge."""
    edge_index = {SAYS: torch.tensor([[0, 1, 2, 3, 4, 5], [0, 1, 2, 0, 1, 2]]),
                  BY: torch.tensor([[0, 1, 2, 3, 4, 5], [0, 0, 0, 1, 1, 1]]),
                  SIM: torch.tensor([[0, 1, 2, 3, 4, 5], [3, 4, 5, 0, 1, 2]])}
    every = torch.arange(6)
    splits = {SAYS: EdgeSplit(torch.arange(5), torch.tensor([], dtype=torch.long), torch.tensor([5])),
              BY: EdgeSplit(every, every[:0], every[:0]), SIM: EdgeSplit(every, every[:0], every[:0])}
    return edge_index, splits, {"clip": 6, "word": 3, "speaker": 2}


def test_held_out_nodes_leave_every_training_edge():
    edge_index, splits, num_nodes = _toy()
    held, out = hold_out_nodes(edge_index, splits, [SAYS], num_nodes, fraction=0.4,
                               generator=torch.Generator().manual_seed(0))
    nodes = held["clip"]
    assert nodes.numel() == 2 and not torch.isin(nodes, torch.tensor([5])).any()  # drawn among train nodes
    for et, split in out.items():  # no training (hence no message) edge touches a held-out clip
        ends = edge_index[et][:, split.train]
        assert not torch.isin(ends[0], nodes).any()
        if et[2] == "clip":
            assert not torch.isin(ends[1], nodes).any()
    # their training links now validate; the test split is untouched
    assert torch.equal(edge_index[SAYS][0, out[SAYS].valid].sort().values, nodes)
    assert torch.equal(out[SAYS].test, splits[SAYS].test)
    # a kept (feature-derived) relation stays whole: new items get those edges too
    _, kept = hold_out_nodes(edge_index, splits, [SAYS], num_nodes, fraction=0.4, keep=frozenset({SIM}),
                             generator=torch.Generator().manual_seed(0))
    assert torch.equal(kept[SIM].train, splits[SIM].train) and kept[BY].train.numel() == 4


def test_bad_share_is_bad_input():
    edge_index, splits, num_nodes = _toy()
    with pytest.raises(InputError, match="inductive"):
        hold_out_nodes(edge_index, splits, [SAYS], num_nodes, fraction=1.0)
    with pytest.raises(InputError, match="cold_start_ratio"):
        cold_start_messages({}, {}, edge_index, ratio=-0.1)


def test_cold_start_step_drops_every_message_of_the_chosen_nodes():
    edge_index, splits, _ = _toy()
    message = {SAYS: torch.tensor([0, 1, 2]), BY: torch.arange(6), SIM: torch.arange(6)}
    supervision = {SAYS: torch.tensor([3, 4])}
    kept, cold = cold_start_messages(message, supervision, edge_index, ratio=0.5, keep=frozenset({SIM}),
                                     generator=torch.Generator().manual_seed(1))
    assert cold["clip"].numel() == 1 and torch.isin(cold["clip"], torch.tensor([3, 4])).all()
    assert not torch.isin(edge_index[BY][0, kept[BY]], cold["clip"]).any()
    assert kept[BY].numel() == 5 and torch.equal(kept[SIM], message[SIM]) and torch.equal(kept[SAYS], message[SAYS])
    same, none = cold_start_messages(message, supervision, edge_index, ratio=0.0)
    assert same is message and none == {}


def test_attach_neighbours_follows_cosine_and_masks():
    graph_x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    new = attach_neighbours(torch.tensor([[1.0, 0.1], [0.0, 1.0]]), torch.tensor([True, False]), graph_x,
                            torch.tensor([True, True, False]), 1, offset=3)
    assert new.tolist() == [[3], [0]]  # item 1 masked (no feature), node 2 masked out of the graph


@pytest.fixture()
def knn_graph_dir(tmp_path):
    manifest = write_tiny_graph(tmp_path, items=40)
    text = manifest.read_text().replace(
        "features: {f: {modality: numeric, columns: [f1, f2]}}}",
        "features: {f: {modality: numeric, columns: [f1, f2]}}, knn: {feature: f, k: 3}}")
    manifest.write_text(text)
    graph, report = mmgraph.build_graph(manifest, return_report=True)
    return write_graph(graph, report, tmp_path / "graph")


def test_inductive_prepare_keeps_held_out_items_out_of_messages(knn_graph_dir):
    graph = mmgraph.load_graph(knn_graph_dir)
    plain = prepare_graph(graph, relations=("in",), seed=0)
    prepared = prepare_graph(graph, relations=("in",), seed=0, inductive=0.25)
    et = ("item", "in", "group")
    moved = prepared.splits[et].valid[~torch.isin(prepared.splits[et].valid, plain.splits[et].valid)]
    held = prepared.edge_index[et][0, moved]
    assert held.numel() == round(0.25 * plain.splits[et].train.numel())
    for mt, ei in prepared.message_edges().items():
        if "similar_f" in mt[1]:
            continue  # the kNN relation is what a brand-new item gets too
        for side, node_type in ((0, mt[0]), (1, mt[2])):
            if node_type == "item":
                assert not torch.isin(ei[side], held).any(), mt
    assert torch.equal(prepared.splits[et].test, plain.splits[et].test)


def test_predict_items_on_an_inductive_run(knn_graph_dir, tmp_path, capsys):
    config = tmp_path / "cfg.yaml"
    config.write_text("epochs: 30\neval_every: 5\nlr: 0.02\ninductive: 0.2\ncold_start_ratio: 0.5\n"
                      "model: {channels: 16, num_layers: 1}\n")
    run = tmp_path / "run"
    assert main(["train", str(knn_graph_dir), "-o", str(run), "--config", str(config), "--quiet"]) == 0
    capsys.readouterr()
    # brand-new items: copies of known items' features (paths are not needed for numeric features)
    rows = (knn_graph_dir.parent / "items.csv").read_text().splitlines()
    (tmp_path / "new.csv").write_text("\n".join([rows[0]] + [r.replace("i", "new", 1) for r in rows[1:9]]) + "\n")
    assert main(["predict", str(run), "--items", str(tmp_path / "new.csv"), "--type", "item",
                 "--relation", "in", "-k", "1", "--json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    hits = [r["top"][0]["id"] == f"g{int(r['source'][3:]) % 4}" for r in out["results"]]
    assert len(hits) == 8 and sum(hits) >= 6  # features say the group: new items find it
