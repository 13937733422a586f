"""mmgraph.encoders: raw values (media paths, text, numbers) -> fixed-size feature vectors.

Light to import: heavy libraries (transformers, the EfficientNet weights, scipy) load inside
the encoders that need them, on first use.

>>> enc = make_encoder("audio")                      # the packaged default for the modality
>>> feat = encode_values(enc, ["a.wav", None], cache=FeatureCache("cache"))
>>> same = encoder_from_spec(enc.spec())             # rebuilds it, fitted statistics included
"""
from mmgraph.encoders.base import (
    MODALITIES,
    BadItemError,
    EncodedFeature,
    Encoder,
    default_encoder_name,
    encoder_from_spec,
    make_encoder,
    register_encoder,
    registered_encoders,
)
from mmgraph.encoders.cache import FeatureCache
from mmgraph.encoders.pipeline import encode_values

__all__ = [
    "MODALITIES",
    "BadItemError",
    "EncodedFeature",
    "Encoder",
    "FeatureCache",
    "default_encoder_name",
    "encode_values",
    "encoder_from_spec",
    "make_encoder",
    "register_encoder",
    "registered_encoders",
]
