"""Real test media from ../shared/data and tiny Hugging Face models saved to disk."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
FSDD = DATA / "fsdd" / "recordings"
DIGITS = DATA / "digits" / "digits.csv.gz"


def digit_rows(n: int) -> list[tuple[np.ndarray, int]]:
    """The first n 8x8 digits (grey levels 0..16) with their labels."""
    rows = []
    with gzip.open(DIGITS, "rt") as f:
        for line in f:
            vals = [int(float(v)) for v in line.strip().split(",")]
            rows.append((np.array(vals[:64], dtype=np.float32).reshape(8, 8), vals[64]))
            if len(rows) == n:
                break
    return rows


def write_digit_png(pixels: np.ndarray, path: Path) -> Path:
    from PIL import Image

    Image.fromarray((255 - pixels * 255 / 16).astype(np.uint8), "L").save(path)  # dark ink on white
    return path


def tiny_bert(folder: Path) -> Path:
    from transformers import BertConfig, BertModel, BertTokenizer

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words += ["zero", "one", "two", "three", "cat", "dog", "the", "a"]
    vocab = folder / "vocab.txt"
    folder.mkdir(parents=True, exist_ok=True)
    vocab.write_text("\n".join(words) + "\n")
    BertTokenizer(vocab_file=str(vocab)).save_pretrained(folder)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=64)
    BertModel(cfg).save_pretrained(folder)
    return folder


def tiny_clip(folder: Path) -> Path:
    import json

    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    letters = list("abcdefghijklmnopqrstuvwxyz")
    tokens = ["<|startoftext|>", "<|endoftext|>"] + letters + [c + "</w>" for c in letters]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(vocab_file=str(folder / "vocab.json"),
                              merges_file=str(folder / "merges.txt"))
    tokenizer.save_pretrained(folder)
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor.save_pretrained(folder)
    torch.manual_seed(0)
    cfg = CLIPConfig(
        text_config=dict(vocab_size=len(tokens), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=32, bos_token_id=0, eos_token_id=1,
                         pad_token_id=1),
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=8,
    )
    CLIPModel(cfg).save_pretrained(folder)
    return folder


def tiny_wav2vec2(folder: Path) -> Path:
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    cfg = Wav2Vec2Config(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                         conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 4),
                         num_conv_pos_embeddings=16,
                         num_conv_pos_embedding_groups=2, vocab_size=8)
    Wav2Vec2Model(cfg).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(sampling_rate=16000).save_pretrained(folder)
    return folder
