"""A tiny three-type multimedia graph shared by the model tests (10 nodes or fewer per type)."""
from __future__ import annotations

import pytest
import torch
from torch_geometric.data import HeteroData

SAYS = ("clip", "says", "word")
SHOWS = ("image", "shows", "word")
RELATIONS = [SAYS, SHOWS]
MESSAGE_EDGE_TYPES = [SAYS, ("word", "rev_says", "clip"), SHOWS, ("word", "rev_shows", "image")]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: on a busy machine intra-op threads only wait on each other (20x slower).

    Test modules import this fixture to use it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_graph(seed: int = 0) -> HeteroData:
    """clip: audio (16) + age (1), image: picture (12), word: no features (4 nodes).

    Clip i says word i % 4 and image j shows word j % 4; the features carry the word's identity
    (plus noise), so a model can learn the relations from them.
    """
    gen = torch.Generator().manual_seed(seed)
    g = HeteroData()
    words = torch.randn(4, 16, generator=gen)
    clip_word = torch.arange(8) % 4
    g["clip"].num_nodes = 8
    g["clip"].sound = words[clip_word] + 0.1 * torch.randn(8, 16, generator=gen)
    g["clip"].sound_mask = torch.tensor([1, 1, 1, 1, 1, 1, 0, 1], dtype=torch.bool)
    g["clip"].age = torch.randn(8, 1, generator=gen)
    g["clip"].age_mask = torch.tensor([1, 0, 1, 1, 0, 1, 1, 1], dtype=torch.bool)
    g["clip"].sound[~g["clip"].sound_mask] = 0.0
    image_word = torch.arange(6) % 4
    g["image"].num_nodes = 6
    g["image"].picture = words[image_word, :12] + 0.1 * torch.randn(6, 12, generator=gen)
    g["image"].picture_mask = torch.tensor([1, 1, 1, 0, 1, 1], dtype=torch.bool)
    g["word"].num_nodes = 4
    g[SAYS].edge_index = torch.stack([torch.arange(8), clip_word])
    g[SHOWS].edge_index = torch.stack([torch.arange(6), image_word])
    g.mmgraph = {"name": "tiny", "features": {
        "clip": {"sound": {"modality": "audio", "dim": 16}, "age": {"modality": "numeric", "dim": 1}},
        "image": {"picture": {"modality": "image", "dim": 12}},
        "word": {}}}
    return g


def model_inputs(g: HeteroData):
    """``(x_dict, mask_dict, edge_index_dict)`` for `LinkPredictor.embed`, reverse edges explicit."""
    feats = {"clip": ["sound", "age"], "image": ["picture"], "word": []}
    x = {t: {f: g[t][f] for f in fs} for t, fs in feats.items()}
    mask = {t: {f: g[t][f + "_mask"] for f in fs} for t, fs in feats.items()}
    edges = {}
    for (src, rel, dst) in RELATIONS:
        ei = g[(src, rel, dst)].edge_index
        edges[(src, rel, dst)] = ei
        edges[(dst, f"rev_{rel}", src)] = ei.flip(0)
    return x, mask, edges
