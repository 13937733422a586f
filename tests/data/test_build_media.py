"""End to end on real media: FSDD WAVs, digit images written as PNG, number words as text."""
from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest
import torch

from mmgraph.data.builder import build_graph
from mmgraph.data.graph_io import load_graph, write_graph
from mmgraph.errors import InputError

pytestmark = pytest.mark.slow

WORDS = ["zero", "one", "two"]
CLIPS = ["0_george_5.wav", "1_jackson_5.wav", "2_lucas_5.wav"]


@pytest.fixture(scope="module")
def media_dataset(tmp_path_factory, shared_data):
    """clips (3 WAVs + a missing file + an empty cell), images (3 PNGs + a truncated one), words."""
    from PIL import Image

    root = tmp_path_factory.mktemp("media")
    (root / "wav").mkdir()
    (root / "img").mkdir()
    for name in CLIPS:
        shutil.copy(shared_data / "fsdd" / "recordings" / name, root / "wav" / name)
    with gzip.open(shared_data / "digits" / "digits.csv.gz", "rt") as f:
        rows = [np.array(line.split(","), dtype=np.int64) for _, line in zip(range(40), f)]
    by_label = {}
    for row in rows:
        by_label.setdefault(int(row[-1]), row[:64].reshape(8, 8))
    for digit in range(3):
        pixels = (by_label[digit] * 255 // 16).astype(np.uint8)
        Image.fromarray(pixels, mode="L").resize((32, 32)).save(root / "img" / f"{digit}.png")
    good = (root / "img" / "0.png").read_bytes()
    (root / "img" / "broken.png").write_bytes(good[: len(good) // 2])

    clips = ["clip_id,path,digit"] + [f"c{d},wav/{name},{WORDS[d]}" for d, name in enumerate(CLIPS)]
    clips += ["c3,wav/absent.wav,one", "c4,,two"]
    images = ["image_id,file,digit", "i0,img/0.png,zero", "i1,img/1.png,one", "i2,img/broken.png,two",
              "i3,img/2.png,two"]
    words = ["word"] + WORDS
    for name, lines in {"clips.csv": clips, "images.csv": images, "words.csv": words}.items():
        (root / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    manifest = {
        "name": "digits-media",
        "encoders": {"image": "efficientnet-lite0"},   # the tiny test images would be read as pixels by default
        "nodes": {
            "clip": {"table": "clips.csv", "id": "clip_id",
                     "features": {"sound": {"modality": "audio", "column": "path", "augment": 1}}},
            "image": {"table": "images.csv", "id": "image_id",
                      "features": {"picture": {"modality": "image", "column": "file"}}},
            "word": {"table": "words.csv", "id": "word",
                     "features": {"name": {"modality": "text", "column": "word"}}},
        },
        "edges": [
            {"relation": "says", "table": "clips.csv", "source": {"type": "clip", "column": "clip_id"},
             "target": {"type": "word", "column": "digit"}},
            {"relation": "shows", "table": "images.csv", "source": {"type": "image", "column": "image_id"},
             "target": {"type": "word", "column": "digit"}},
        ],
    }
    import yaml

    (root / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    return root


def test_bad_file_names_file_table_row_and_field(media_dataset, tmp_path):
    with pytest.raises(InputError) as err:
        build_graph(media_dataset / "manifest.yaml", device="cpu", cache_dir=tmp_path / "cache")
    message = str(err.value)
    assert "broken.png" in message and "images.csv" in message, message
    assert "row 3" in message and "image.picture" in message, message


def test_build_with_skip_bad_and_round_trip(media_dataset, tmp_path):
    graph, report = build_graph(media_dataset / "manifest.yaml", device="cpu", skip_bad=True,
                                cache_dir=tmp_path / "cache", return_report=True)
    clip, image, word = graph["clip"], graph["image"], graph["word"]
    assert clip.sound_mask.tolist() == [True, True, True, False, False]  # missing file, empty cell
    assert clip.sound[3:].abs().sum() == 0 and clip.sound_views.shape == (5, 1, clip.sound.size(1))
    assert image.picture.shape == (4, 1280) and image.picture_mask.tolist() == [True, True, False, True]
    assert word.name.shape == (3, 384)
    assert torch.allclose(word.name.norm(dim=1), torch.ones(3), atol=1e-4)  # MiniLM is L2-normalised
    assert graph["clip", "says", "word"].edge_index.tolist() == [[0, 1, 2, 3, 4], [0, 1, 2, 1, 2]]

    features = {t: report["nodes"][t]["features"] for t in ("clip", "image", "word")}
    assert (features["clip"]["sound"]["missing"], features["clip"]["sound"]["bad"]) == (2, 0)
    assert (features["image"]["picture"]["missing"], features["image"]["picture"]["bad"]) == (1, 1)
    identity = graph.mmgraph["features"]["word"]["name"]["encoder"]
    assert features["word"]["name"] == {"modality": "text", "encoder": identity, "dim": 384, "missing": 0,
                                        "bad": 0}
    [bad] = report["bad_files"]
    assert bad["file"].endswith("broken.png") and bad["row"] == 3 and bad["field"] == "image.picture"
    assert bad["table"].endswith("images.csv") and bad["reason"]
    assert report["edges"]["image|shows|word"] == {"count": 4}

    out = write_graph(graph, report, tmp_path / "graph")
    again = load_graph(out)
    assert torch.equal(again["image"].picture, image.picture) and again.mmgraph["ids"]["clip"][3] == "c3"
    # a rebuild from the cache gives the same features
    cached = build_graph(media_dataset / "manifest.yaml", device="cpu", skip_bad=True,
                         cache_dir=tmp_path / "cache")
    for t, name in (("clip", "sound"), ("image", "picture"), ("word", "name")):
        assert torch.allclose(cached[t][name], graph[t][name], atol=1e-6)


def test_small_images_default_to_pixels_and_media_get_knn_relations(media_dataset, tmp_path, caplog):
    import logging

    import yaml

    manifest = yaml.safe_load((media_dataset / "manifest.yaml").read_text())
    del manifest["encoders"]
    (media_dataset / "default.yaml").write_text(yaml.safe_dump(manifest))
    with caplog.at_level(logging.INFO, logger="mmgraph"):
        graph = build_graph(media_dataset / "default.yaml", device="cpu", skip_bad=True)
    features = graph.mmgraph["features"]["image"]
    assert features["picture"]["spec"]["name"] == "pixels"
    # the ImageNet network's view of the same files beside the pixels, read from the same column
    assert features["picture_imagenet"]["spec"]["name"] == "efficientnet-lite0"
    assert graph["image"].picture_imagenet.shape == (graph["image"].num_nodes, features["picture_imagenet"]["dim"])
    assert graph.mmgraph["source"]["image"]["columns"]["picture_imagenet"] == \
        graph.mmgraph["source"]["image"]["columns"]["picture"]
    assert "images are small" in caplog.text
    assert graph.mmgraph["features"]["clip"]["sound"]["spec"]["name"] == "speech"   # the default audio encoder
    # too few nodes here (5 clips, 4 images) for the default kNN relations; the rule is tested in test_builder
    assert not any(et[1].startswith("similar_") for et in graph.edge_types)


def test_a_feature_named_like_a_derived_column_is_refused(media_dataset):
    import yaml

    manifest = yaml.safe_load((media_dataset / "manifest.yaml").read_text())
    del manifest["encoders"]
    features = manifest["nodes"]["image"]["features"]
    features["picture_imagenet"] = dict(features["picture"])
    (media_dataset / "clash.yaml").write_text(yaml.safe_dump(manifest))
    with pytest.raises(InputError, match=r"nodes\.image\.features\.picture_imagenet: the build derives"):
        build_graph(media_dataset / "clash.yaml", device="cpu", skip_bad=True)
