"""all-MiniLM-L6-v2 and encoders for local Hugging Face folders (tiny models saved in the test)."""
from __future__ import annotations

import pytest
import torch

from mmgraph.encoders import encode_values, encoder_from_spec, make_encoder
from mmgraph.errors import InputError


@pytest.fixture(scope="module")
def minilm():
    return make_encoder("text")


def test_minilm_sentence_embeddings_are_unit_length_and_meaningful(minilm):
    texts = ["a photo of a cat", "a picture of a kitten", "the stock market fell sharply today", None]
    feat = encode_values(minilm, texts, batch_size=2)
    assert feat.x.shape == (4, 384) and feat.mask.tolist() == [True, True, True, False]
    assert torch.allclose(feat.x[:3].norm(dim=1), torch.ones(3), atol=1e-5)
    sim = feat.x[:3] @ feat.x[:3].T
    assert sim[0, 1] > sim[0, 2] + 0.2  # cat ~ kitten, far from finance


def test_minilm_matches_a_direct_sentence_transformers_style_pass(minilm):
    from transformers import AutoModel, AutoTokenizer

    from mmgraph.encoders.text import minilm_path

    tok = AutoTokenizer.from_pretrained(minilm_path())
    model = AutoModel.from_pretrained(minilm_path()).eval()
    text = "seven " * 400  # longer than the 256-token limit: truncated, not an error
    enc = tok([text], truncation=True, max_length=256, return_tensors="pt")
    assert enc["input_ids"].shape[1] == 256
    with torch.inference_mode():
        ref = model(**enc).last_hidden_state.mean(1)
    ref = torch.nn.functional.normalize(ref, dim=-1)
    ours = encode_values(minilm, [text]).x
    assert torch.allclose(ours, ref, atol=1e-5)


def test_text_batches_sorted_by_length_keep_row_order(minilm):
    texts = ["one", "a much longer sentence about numbers and words", "two"]
    together = encode_values(minilm, texts, batch_size=2).x
    alone = torch.cat([encode_values(minilm, [t]).x for t in texts])
    assert torch.allclose(together, alone, atol=1e-5)


def test_minilm_spec_has_no_install_path_and_round_trips(minilm):
    spec = minilm.spec()
    assert spec["options"] == {"max_length": 256}
    assert encoder_from_spec(spec).identity == minilm.identity


def test_bert_folder_mean_pools_tokens(tiny_models):
    enc = make_encoder("text", str(tiny_models["bert"]))
    assert enc.name == "hf-folder" and enc.dim == 16
    feat = encode_values(enc, ["the cat", "one two three", "dog"])
    assert feat.x.shape == (3, 16) and feat.mask.all()
    again = encoder_from_spec(enc.spec())
    assert torch.equal(encode_values(again, ["the cat"]).x, feat.x[:1])


def test_clip_folder_puts_text_and_images_in_one_space(tiny_models, digit_pngs):
    text = make_encoder("text", str(tiny_models["clip"]))
    image = make_encoder("image", str(tiny_models["clip"]))
    assert text.clip_like and image.clip_like and text.dim == image.dim == 8
    t = encode_values(text, ["a digit", "zero"]).x
    i = encode_values(image, [str(p) for p in digit_pngs[:3]], views=1).x
    assert t.shape == (2, 8) and i.shape == (3, 8)
    # The image path follows CLIPImageProcessor: the same numbers as calling it directly.
    from PIL import Image
    from transformers import CLIPModel, CLIPImageProcessor

    proc = CLIPImageProcessor.from_pretrained(tiny_models["clip"])
    model = CLIPModel.from_pretrained(tiny_models["clip"]).eval()
    pixels = proc(images=Image.open(digit_pngs[0]).convert("RGB"), return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        ref = model.get_image_features(pixel_values=pixels)
    ref = ref if isinstance(ref, torch.Tensor) else ref.pooler_output
    assert torch.allclose(i[:1], ref, atol=1e-5)


def test_wav2vec2_folder_encodes_resampled_clips(tiny_models, fsdd_wavs):
    enc = make_encoder("audio", str(tiny_models["wav2vec2"]))
    assert enc.dim == 16 and enc.sample_rate == 16000
    feat = encode_values(enc, [str(p) for p in fsdd_wavs[:3]], views=1, seed=0)
    assert feat.x.shape == (3, 16) and feat.views.shape == (3, 1, 16) and torch.isfinite(feat.x).all()
    assert encoder_from_spec(enc.spec()).identity == enc.identity


def test_identity_changes_when_the_weights_change(tiny_models, tmp_path):
    import shutil

    copy = tmp_path / "bert"
    shutil.copytree(tiny_models["bert"], copy)
    before = make_encoder("text", str(copy)).identity
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert make_encoder("text", str(copy)).identity != before


def test_unknown_names_and_modalities_are_clear_input_errors(tmp_path):
    with pytest.raises(InputError, match="unknown modality 'audi'.*did you mean 'audio'"):
        make_encoder("audi")
    with pytest.raises(InputError, match="unknown text encoder 'minilml'.*did you mean 'minilm'"):
        make_encoder("text", "minilml")
    with pytest.raises(InputError, match="not a loadable Hugging Face model folder"):
        make_encoder("text", str(tmp_path))  # an empty folder


def test_missing_image_processor_is_a_logged_fallback(tiny_models, digit_pngs, tmp_path, caplog):
    import logging
    import shutil

    with caplog.at_level(logging.WARNING, logger="mmgraph.encoders"):
        make_encoder("image", str(tiny_models["clip"]))
    assert not [r for r in caplog.records if "image processor" in r.getMessage()]
    folder = tmp_path / "clip_without_processor"
    shutil.copytree(tiny_models["clip"], folder)
    (folder / "preprocessor_config.json").unlink()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mmgraph.encoders"):
        image = make_encoder("image", str(folder))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert str(folder) in message and "no image processor could be loaded" in message
    assert "OSError" in message and "centre-crop to" in message
    assert image.processor is None
    assert encode_values(image, [str(digit_pngs[0])]).x.shape == (1, image.dim)
