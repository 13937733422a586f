"""Cold start end to end on real data: clips of a speaker the demo graph never saw, via predict_items."""
from __future__ import annotations

import os

import pytest
import torch

from mmgraph.train.presets import DEMO_TRAIN
from mmgraph.eval.predict import predict_items
from mmgraph.train.config import TrainConfig
from mmgraph.train.run import load_run, train_run
from mmgraph.eval.evaluate import evaluate_split

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.mark.slow
def test_new_speaker_clips_find_their_word(demo_graph_dir, shared_data, tmp_path):
    """Demo settings, 80 epochs, `inductive` + `cold_start_ratio`; lucas (never in the graph), takes
    0-3 of every digit (40 clips). Measured with full training over 3 seeds: .973 on takes 0-15;
    the issue's bar is .80."""
    recordings = shared_data / "fsdd" / "recordings"
    names = [f"{d}_lucas_{t}" for d in range(10) for t in range(4)]
    lines = ["clip_id,path"] + [f"{n},{os.path.relpath(recordings / f'{n}.wav', tmp_path)}" for n in names]
    table = tmp_path / "lucas.csv"
    table.write_text("\n".join(lines) + "\n")
    config = TrainConfig.from_dict({**DEMO_TRAIN, "epochs": 80, "inductive": 0.1, "cold_start_ratio": 0.3},
                                   source="test")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_run(demo_graph_dir, tmp_path / "run", config, evaluate=evaluate_split, device=torch.device("cpu"),
                  force=True)
    finally:
        torch.set_num_threads(threads)
    result = predict_items(load_run(tmp_path / "run"), table, "clip", "says", k=1)
    hits = [r["top"][0]["id"] == WORDS[int(r["source"].split("_")[0])] for r in result["results"]]
    print(f"lucas takes 0-3: Hits@1 {sum(hits) / len(hits):.3f}")
    assert len(hits) == 40 and sum(hits) / len(hits) >= 0.8
