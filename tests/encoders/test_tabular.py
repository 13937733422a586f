"""Numeric, categorical and vector encoders: fitting, missing values, bad rows, spec round-trip."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mmgraph.encoders import encode_values, encoder_from_spec, make_encoder
from mmgraph.errors import InputError


def test_numeric_standardises_and_imputes_partly_empty_rows():
    values = [["1", "10"], ["3", None], [None, None], ["5", "30"]]
    enc = make_encoder("numeric")
    feat = encode_values(enc, values)
    assert enc.dim == 2
    assert feat.mask.tolist() == [True, True, False, True]  # the all-empty row is missing
    assert enc.state()["mean"] == pytest.approx([3.0, 20.0])
    assert enc.state()["std"] == pytest.approx([np.std([1, 3, 5]), 10.0])
    x = feat.x
    assert x[0, 0] == pytest.approx(-2 / np.std([1, 3, 5]), rel=1e-5)
    assert x[1, 1] == 0.0  # imputed with the mean -> 0 after standardising
    assert torch.equal(x[2], torch.zeros(2))


def test_numeric_single_column_scalars_and_constant_column():
    enc = make_encoder("numeric")
    enc.fit(["2", "2", "2.0"])
    assert enc.state()["std"] == [1.0]  # constant column: std 1, not a division by zero
    assert encode_values(enc, ["2", "4"]).x.squeeze(1).tolist() == [0.0, 2.0]


def test_numeric_bad_cell_names_the_row():
    enc = make_encoder("numeric")
    with pytest.raises(InputError, match=r"row 3: .*not a number: 'abc'"):
        encode_values(enc, ["1", "2", "abc"])


def test_categorical_one_hot_with_unseen_slot():
    enc = make_encoder("categorical")
    enc.fit(["noun", "verb", "noun", None])
    assert enc.state() == {"vocab": ["noun", "verb"]} and enc.dim == 3
    feat = encode_values(enc, ["verb", "adjective", None, "noun"])
    assert feat.x.argmax(1).tolist()[:2] == [1, 2]  # "adjective" is unseen -> last slot
    assert feat.mask.tolist() == [True, True, False, True]
    assert feat.x[2].sum() == 0


def test_vector_parses_strings_and_lists_and_checks_length():
    enc = make_encoder("vector")
    feat = encode_values(enc, ["1 2 3", [4.0, 5.0, 6.0], None, np.array([7, 8, 9])])
    assert enc.dim == 3
    assert feat.x.tolist() == [[1, 2, 3], [4, 5, 6], [0, 0, 0], [7, 8, 9]]
    with pytest.raises(InputError, match=r"row 2: .*2 numbers, expected 3"):
        encode_values(enc, ["1,2,3", "1 2"])


@pytest.mark.parametrize("modality,values", [
    ("numeric", [["1", "2"], ["3", "5"], ["-1", None]]),
    ("categorical", ["a", "b", "c", "a"]),
    ("vector", ["0.5 1.5", "2 3"]),
])
def test_spec_round_trip_keeps_fitted_statistics(modality, values):
    enc = make_encoder(modality)
    enc.fit(values)
    spec = json.loads(json.dumps(enc.spec()))  # must survive JSON
    again = encoder_from_spec(spec)
    assert again.identity == enc.identity and again.dim == enc.dim
    new_items = values[:2]
    assert torch.equal(encode_values(again, new_items).x, encode_values(enc, new_items).x)


def test_use_before_fit_is_an_input_error():
    enc = make_encoder("categorical")
    with pytest.raises(InputError, match="before fit"):
        enc.load("a")
