"""`mmgraph pretrain` and `train --init` end to end on tiny graphs, with exit codes and leakage checks."""
from __future__ import annotations

import csv

import pytest
import torch

import mmgraph
from mmgraph.cli.main import main
from mmgraph.data.graph_io import write_graph
from mmgraph.errors import InputError
from mmgraph.train import pretrain_objective as pretrain_module
from mmgraph.train.pretrain import pretrain_run
from mmgraph.train.pretrain_config import PretrainConfig
from mmgraph.train.run import load_run

from tiny_media_graph import write_tiny_graph

MODEL = "model: {channels: 16, num_layers: 1, fusion_heads: 2}\n"


@pytest.fixture()
def graph_dir(tmp_path):
    graph, report = mmgraph.build_graph(write_tiny_graph(tmp_path), return_report=True)
    return write_graph(graph, report, tmp_path / "graph")


@pytest.fixture()
def configs(tmp_path):
    pre = tmp_path / "pretrain.yaml"
    pre.write_text("epochs: 6\nheld_out_relations: [in]\n" + MODEL)
    train = tmp_path / "train.yaml"
    train.write_text("epochs: 6\neval_every: 2\nfreeze_epochs: 2\nlr: 0.02\n" + MODEL)
    return pre, train


def test_pretrain_then_fine_tune_from_the_command_line(graph_dir, configs, tmp_path, capsys):
    pre, train = configs
    run = tmp_path / "pre"
    assert main(["pretrain", str(graph_dir), "-o", str(run), "--config", str(pre), "--seed", "3", "--quiet"]) == 0
    assert "--init" in capsys.readouterr().out
    loaded = load_run(run)
    assert loaded.extra["kind"] == "pretrain" and loaded.extra["pretrain_config"]["seed"] == 3
    assert loaded.model.relations == []                   # no relation label was learned
    assert loaded.extra["modules"]["projection.lins.item|f.weight"] == "projection.lins|item|f|weight"
    with open(run / "pretrain_log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == list(range(1, 7)) and all(float(r["loss"]) > 0 for r in rows)
    assert main(["pretrain", str(graph_dir), "-o", str(run), "--quiet"]) == 2            # exists, no --force
    assert main(["evaluate", str(run), "--quiet"]) == 2                                   # nothing scored yet

    out = tmp_path / "tuned"
    assert main(["train", str(graph_dir), "-o", str(out), "--config", str(train), "--init", str(run), "--quiet"]) == 0
    init = load_run(out).extra["init"]
    assert init["loaded"] and init["new"] == ["relation_vectors[item|in|group]"] and not init["skipped"]
    assert main(["train", str(graph_dir), "-o", str(tmp_path / "x"), "--init", str(tmp_path / "nope"),
                 "--quiet"]) == 2


def test_bad_pretrain_config_exits_2_naming_the_option(graph_dir, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: 2\nmask_ratio: 0.5\n")
    assert main(["pretrain", str(graph_dir), "-o", str(tmp_path / "r"), "--config", str(bad), "--quiet"]) == 2
    assert "mask_ratio" in capsys.readouterr().err
    with pytest.raises(InputError, match="temperature"):
        PretrainConfig.from_dict({"temperature": 0})
    with pytest.raises(InputError, match="weight 0"):
        PretrainConfig.from_dict({"edge_weight": 0, "feature_weight": 0, "contrastive_weight": 0})


@pytest.mark.parametrize("mode", ["full", "mini"])
def test_pretraining_never_sees_held_out_edges(mode, graph_dir, tmp_path, monkeypatch):
    """Neither the reconstructed edges nor (mini-batch) the sampled subgraphs' message edges, in
    either direction, include a valid or test edge."""
    from mmgraph.train import minibatch

    seen, messages, subs = [], [], []
    real, real_sampler = pretrain_module.edge_reconstruction_loss, minibatch.epoch_sampler

    def record(z_src, z_dst, pos, neg):
        ends = pos.cpu()
        if mode == "mini":   # local ids of the subgraph just sampled; item -in-> group is the one relation
            ends = torch.stack([subs[-1].n_id["item"][ends[0]], subs[-1].n_id["group"][ends[1]]])
        seen.append(ends)
        return real(z_src, z_dst, pos, neg)

    def sampler(*args, **kwargs):
        made = real_sampler(*args, **kwargs)
        sample = made.sample

        def watched(seeds, **kw):
            sub = sample(seeds, **kw)
            subs.append(sub)
            for et, ei in sub.edge_index.items():
                src, dst = sub.n_id[et[0]][ei[0]], sub.n_id[et[2]][ei[1]]
                messages.append(torch.stack([src, dst] if et[0] == "item" else [dst, src]))
            return sub

        made.sample = watched
        return made

    monkeypatch.setattr(pretrain_module, "edge_reconstruction_loss", record)
    monkeypatch.setattr(minibatch, "epoch_sampler", sampler)
    config = PretrainConfig.from_dict({"epochs": 5, "batching": mode, "batch_size": 4,
                                       "model": {"channels": 8, "num_layers": 1, "fusion_heads": 2}})
    pretrain_run(graph_dir, tmp_path / "pre", config, device=torch.device("cpu"))
    graph = mmgraph.load_graph(graph_dir)
    et = ("item", "in", "group")
    held = graph[et].edge_index[:, graph[et].split > 0]
    held_keys = set((held[0] * 100 + held[1]).tolist())
    for used in (seen, messages) if mode == "mini" else (seen,):
        used = torch.cat(used, dim=1)
        assert used.numel() and not held_keys & set((used[0] * 100 + used[1]).tolist())
    used = torch.cat(seen, dim=1)   # and the mapping to global ids is right: each pair is an edge of the graph
    assert set((used[0] * 100 + used[1]).tolist()) <= set((graph[et].edge_index[0] * 100
                                                          + graph[et].edge_index[1]).tolist())


def test_feature_reconstruction_learns(graph_dir, tmp_path):
    config = PretrainConfig.from_dict({"epochs": 40, "lr": 0.01, "edge_weight": 0, "contrastive_weight": 0,
                                       "mask_rate": 0.5, "model": {"channels": 16, "num_layers": 1,
                                                                   "fusion_heads": 2}})
    rows = pretrain_run(graph_dir, tmp_path / "pre", config, device=torch.device("cpu"))
    first = sum(r["feature"] for r in rows[:5]) / 5
    last = sum(r["feature"] for r in rows[-5:]) / 5
    assert last < 0.7 * first


def test_fine_tuning_transfers_to_a_node_type_the_pretraining_never_saw(graph_dir, configs, tmp_path):
    pre, train = configs
    assert main(["pretrain", str(graph_dir), "-o", str(tmp_path / "pre"), "--config", str(pre), "--quiet"]) == 0
    # The same items under another node type name ("thing"): its numeric projection (2-d) is new
    # to the pretrained model and initialises from the projection of "item" (same modality, size).
    other = tmp_path / "other"
    other.mkdir()
    manifest = write_tiny_graph(other, seed=1)
    manifest.write_text(manifest.read_text().replace("item:", "thing:").replace("type: item", "type: thing"))
    graph, report = mmgraph.build_graph(manifest, return_report=True)
    other_dir = write_graph(graph, report, other / "graph")
    assert main(["train", str(other_dir), "-o", str(tmp_path / "tuned"), "--config", str(train),
                 "--init", str(tmp_path / "pre"), "--quiet"]) == 0
    init = load_run(tmp_path / "tuned").extra["init"]
    assert any(name.startswith("projection.lins.thing|f.") for name in init["transferred"])
    source = load_run(tmp_path / "pre").model.state_dict()["projection.lins.item|f.weight"]
    tuned = load_run(tmp_path / "tuned").model.state_dict()["projection.lins.thing|f.weight"]
    assert tuned.shape == source.shape


def test_a_relation_without_non_edges_carries_messages_but_is_not_reconstructed(tmp_path):
    # Every item belongs to the single "all" group: no negative exists for that relation.
    manifest = write_tiny_graph(tmp_path)
    (tmp_path / "everything.csv").write_text("item,all\n" + "".join(f"i{i},all\n" for i in range(40)))
    (tmp_path / "alls.csv").write_text("all\nall\n")
    manifest.write_text(manifest.read_text().replace("nodes:\n", "nodes:\n  all: {table: alls.csv, id: all}\n")
                        + "  - {relation: part_of, table: everything.csv, source: {type: item, column: item},\n"
                          "     target: {type: all, column: all}}\n")
    graph, report = mmgraph.build_graph(manifest, return_report=True)
    graph_dir = write_graph(graph, report, tmp_path / "graph")
    config = PretrainConfig.from_dict({"epochs": 2, "held_out_relations": ["in"],
                                       "model": {"channels": 8, "num_layers": 1, "fusion_heads": 2}})
    rows = pretrain_run(graph_dir, tmp_path / "pre", config, device=torch.device("cpu"))
    assert len(rows) == 2 and all(r["edge"] > 0 for r in rows)
    assert ["item", "part_of", "all"] in load_run(tmp_path / "pre").model.schema.to_dict()["edge_types"]
