"""`mmgraph build` under torchrun: 2 CPU processes each encode half of every media column."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from mmgraph.data.builder import build_graph
from mmgraph.data.graph_io import load_graph
from mmgraph.encoders import FeatureCache

from torchrun_launch import check, torchrun

pytestmark = pytest.mark.slow

CLIPS = [f"{d}_{s}_0.wav" for d in (0, 1, 2) for s in ("george", "lucas")] + ["3_george_0.wav"]


@pytest.fixture
def manifest(tmp_path, shared_data, write_dataset):
    """7 FSDD clips, a truncated WAV in rank 1's half, a missing file; audio with one view + numbers."""
    (tmp_path / "wav").mkdir()
    for name in CLIPS:
        shutil.copy(shared_data / "fsdd" / "recordings" / name, tmp_path / "wav" / name)
    good = (tmp_path / "wav" / CLIPS[0]).read_bytes()
    (tmp_path / "wav" / "broken.wav").write_bytes(good[:30])
    files = [f"wav/{n}" for n in CLIPS[:4]] + ["wav/absent.wav", f"wav/{CLIPS[4]}", "wav/broken.wav"] + \
        [f"wav/{n}" for n in CLIPS[5:]]
    rows = ["clip,path,length"] + [f"c{i},{f},{i * 0.5}" for i, f in enumerate(files)]
    return write_dataset({
        "name": "sharded",
        "nodes": {"clip": {"table": "clips.csv", "id": "clip", "features": {
            "sound": {"modality": "audio", "column": "path", "augment": 1},
            "length": {"modality": "numeric", "columns": ["length"]}}}},
    }, {"clips.csv": "\n".join(rows) + "\n"})


def test_two_process_build_equals_one_process(manifest, tmp_path):
    reference, report = build_graph(manifest, device="cpu", skip_bad=True, return_report=True)
    out = tmp_path / "out"
    out.mkdir()
    result = check(torchrun(["build", str(manifest), "-o", "graph", "--skip-bad", "--cache", "cache",
                             "--device", "cpu"], cwd=out))
    assert result.stderr.count("built sharded") == 1  # only rank 0 logs
    assert sorted(p.name for p in out.iterdir()) == ["cache", "graph"]

    graph = load_graph(out / "graph")
    store, ref = graph["clip"], reference["clip"]
    assert torch.equal(store.sound_mask, ref.sound_mask)
    assert store.sound_mask.tolist() == [True] * 4 + [False, True, False, True, True]
    # Batches differ between one process and two, so equal up to float rounding.
    torch.testing.assert_close(store.sound, ref.sound, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(store.sound_views, ref.sound_views, atol=1e-5, rtol=1e-5)
    assert torch.equal(store.length, ref.length)
    assert graph.mmgraph == reference.mmgraph

    # The broken file sits in rank 1's half: its row is still counted in the whole table.
    bad = json.loads((out / "graph" / "build.json").read_text())["bad_files"]
    assert [(b["row"], b["field"]) for b in bad] == [(7, "clip.sound")]
    assert [(b["row"], b["field"]) for b in report["bad_files"]] == [(7, "clip.sound")]
    # Both ranks' rows reached the shared cache (written in turn): a rebuild reads all 7 back.
    identity = graph.mmgraph["features"]["clip"]["sound"]["encoder"]
    keys = torch.load(FeatureCache(out / "cache").shard_path(identity), weights_only=True)["keys"]
    assert len(keys) == 7
    again = build_graph(manifest, device="cpu", skip_bad=True, cache_dir=out / "cache")
    assert torch.equal(again["clip"].sound, graph["clip"].sound)
