"""The names of derived relations: reverse and kNN, built and parsed back in one place."""
from __future__ import annotations

from mmgraph.data.naming import (is_reverse, knn_edge_type, knn_feature, knn_relation_name, reverse_edge_type,
                                 reverse_relation)


def test_reverse_names():
    assert reverse_relation("says") == "rev_says"
    assert reverse_edge_type(("clip", "says", "word")) == ("word", "rev_says", "clip")
    assert is_reverse(("word", "rev_says", "clip")) and is_reverse("rev_says")
    assert not is_reverse(("clip", "says", "word")) and not is_reverse("revisits")


def test_knn_names_round_trip():
    assert knn_relation_name("sound.mfcc") == "similar_sound.mfcc"
    et = knn_edge_type("clip", "sound.mfcc")
    assert et == ("clip", "similar_sound.mfcc", "clip") and knn_feature(et) == "sound.mfcc"
    assert knn_feature(("clip", "says", "word")) is None
    assert knn_feature(("clip", "similar_x", "word")) is None  # kNN edges join a type to itself
