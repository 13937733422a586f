"""Manifest parsing and validation: every problem names the manifest file and the field path."""
from __future__ import annotations

import copy

import numpy as np
import pytest

from mmgraph.data.manifest import FeatureSpec, TableEdgeSpec, TripleSpec, load_manifest
from mmgraph.errors import InputError

FILES = {
    "clips.csv": "clip_id,path,age\nc1,a.wav,3\n",
    "words.txt": "word\tpos\none\tnum\n",
    "clip_word.csv": "clip_id,word,split\nc1,one,train\n",
    "train.txt": "a\tr\tb\n",
    "vecs.npy": b"",  # replaced below with a real .npy
}

BASE = {
    "name": "spoken",
    "encoders": {"text": "minilm"},
    "nodes": {
        "clip": {
            "table": "clips.csv",
            "id": "clip_id",
            "features": {
                "sound": {"modality": "audio", "column": "path"},
                "age": {"modality": "numeric", "columns": ["age"]},
            },
            "knn": {"feature": "age", "k": 2},
        },
        "word": {
            "table": "words.txt",
            "format": "tsv",
            "id": "word",
            "features": {
                "name": {"modality": "text", "column": "word", "encoder": "minilm"},
                "kind": {"modality": "categorical", "column": "pos"},
                "vec": {"modality": "vector", "npy": "vecs.npy", "augment": 0},
            },
        },
    },
    "edges": [
        {"relation": "says", "table": "clip_word.csv", "source": {"type": "clip", "column": "clip_id"},
         "target": {"type": "word", "column": "word"}, "split": "split"},
        {"triples": {"train": "train.txt"}, "source_type": "entity", "target_type": "entity"},
    ],
}


@pytest.fixture
def dataset(tmp_path, write_dataset):
    def write(manifest=BASE):
        path = write_dataset(manifest, FILES)
        np.save(tmp_path / "vecs.npy", np.zeros((1, 3), dtype=np.float32))
        return path

    return write


def test_valid_manifest_is_parsed_with_absolute_paths(dataset, tmp_path):
    m = load_manifest(dataset())
    assert m.name == "spoken" and m.root == tmp_path.resolve()
    assert list(m.nodes) == ["clip", "word"]
    clip = m.nodes["clip"]
    assert clip.table == tmp_path.resolve() / "clips.csv" and clip.format == "csv"
    assert clip.features["sound"] == FeatureSpec(modality="audio", column="path")
    assert clip.features["age"].columns == ("age",) and clip.knn.k == 2
    assert m.nodes["word"].format == "tsv"  # format: overrides the .txt suffix
    assert m.nodes["word"].features["vec"].npy == tmp_path.resolve() / "vecs.npy"
    says, triples = m.edges
    assert isinstance(says, TableEdgeSpec) and says.edge_type == ("clip", "says", "word")
    assert says.split == "split"
    assert isinstance(triples, TripleSpec) and triples.split and list(triples.files) == ["train"]


def test_dict_manifest_with_root(dataset, tmp_path):
    dataset()
    m = load_manifest(copy.deepcopy(BASE), root=tmp_path)
    assert m.path is None and m.nodes["clip"].table == tmp_path.resolve() / "clips.csv"
    bad = copy.deepcopy(BASE)
    bad["nodes"]["clip"]["id"] = None
    with pytest.raises(InputError, match=r"^manifest: nodes\.clip\.id: missing required key"):
        load_manifest(bad, root=tmp_path)


def test_triples_only_manifest(dataset, tmp_path):
    m = {"edges": [BASE["edges"][1]]}
    manifest = load_manifest(dataset(m))
    assert manifest.nodes == {} and manifest.name == "manifest" and len(manifest.edges) == 1


def test_single_triples_file_has_no_split(dataset, tmp_path):
    m = copy.deepcopy(BASE)
    m["edges"][1]["triples"] = "train.txt"
    spec = load_manifest(dataset(m)).edges[1]
    assert spec.split is False and spec.files == {"train": tmp_path.resolve() / "train.txt"}


def test_encoder_given_as_local_folder_becomes_absolute(dataset, tmp_path):
    (tmp_path / "my-model").mkdir()
    m = copy.deepcopy(BASE)
    m["encoders"]["image"] = "my-model"
    folder = str(tmp_path.resolve() / "my-model")
    assert load_manifest(dataset(m)).encoders == {"text": "minilm", "image": folder}


def _set(path, value):
    """A mutation of BASE: set (or with value=DELETE remove) the key at a dotted path."""
    def mutate(m):
        *parents, last = path
        node = m
        for key in parents:
            node = node[key]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return mutate


def _rename(path, old, new):
    def mutate(m):
        node = m
        for key in path:
            node = node[key]
        node[new] = node.pop(old)
    return mutate


DELETE = object()
CASES = {
    "misspelt top key": (_rename([], "nodes", "node"), r"node: unknown key 'node'.*did you mean 'nodes'\?"),
    "nothing declared": (lambda m: [m.pop("nodes"), m.pop("edges")], r"declares no node types"),
    "edge needs a declared node type": (_set(["nodes"], DELETE),
                                        r"edges\[0\]\.source\.type: unknown node type"),
    "misspelt node key": (_rename(["nodes", "clip"], "features", "feautres"),
                          r"nodes\.clip\.feautres: unknown key .*did you mean 'features'\?"),
    "unknown modality": (_set(["nodes", "clip", "features", "sound", "modality"], "audi"),
                         r"features\.sound\.modality: unknown modality 'audi' .*did you mean 'audio'\?"),
    "misspelt feature key": (_rename(["nodes", "clip", "features", "sound"], "column", "colum"),
                             r"nodes\.clip\.features\.sound\.colum: unknown key .*did you mean 'column'\?"),
    "missing id": (_set(["nodes", "clip", "id"], DELETE), r"nodes\.clip\.id: missing required key"),
    "missing table file": (_set(["nodes", "clip", "table"], "nope.csv"),
                           r"nodes\.clip\.table: table 'nope\.csv' not found"),
    "unknown format": (_set(["nodes", "word", "format"], "excel"),
                       r"nodes\.word\.format: .*unknown table format"),
    "no format from suffix": (_set(["nodes", "word", "format"], DELETE),
                              r"nodes\.word\.table: .*cannot tell the table format"),
    "header for jsonl": (_set(["nodes", "word", "format"], "jsonl"), None),  # replaced below
    "two sources": (_set(["nodes", "clip", "features", "age", "column"], "age"),
                    r"nodes\.clip\.features\.age: a numeric feature needs exactly one of"),
    "npy for text": (_set(["nodes", "word", "features", "name", "npy"], "vecs.npy"),
                     r"nodes\.word\.features\.name: a text feature needs 'column', got 'column', 'npy'"),
    "missing npy": (_set(["nodes", "word", "features", "vec", "npy"], "gone.npy"),
                    r"nodes\.word\.features\.vec\.npy: npy file 'gone\.npy' not found"),
    "negative augment": (_set(["nodes", "word", "features", "vec", "augment"], -1),
                         r"nodes\.word\.features\.vec\.augment: must be at least 0"),
    "augment for text": (_set(["nodes", "word", "features", "name", "augment"], 2),
                         r"nodes\.word\.features\.name\.augment: only image and audio features"),
    "reserved feature name": (_rename(["nodes", "clip", "features"], "age", "age_mask"),
                              r"nodes\.clip\.features\.age_mask: feature name 'age_mask' is reserved"),
    "bad node type name": (_rename(["nodes"], "word", "wo|rd"), r"nodes\.wo\|rd: invalid node type name"),
    "knn unknown feature": (_set(["nodes", "clip", "knn", "feature"], "sund"),
                            r"nodes\.clip\.knn\.feature: unknown feature 'sund' .*did you mean 'sound'\?"),
    "knn k zero": (_set(["nodes", "clip", "knn", "k"], 0), r"nodes\.clip\.knn\.k: must be at least 1"),
    "unknown encoder modality": (_set(["encoders", "txt"], "minilm"),
                                 r"encoders\.txt: unknown modality 'txt' .*did you mean 'text'\?"),
    "unknown edge node type": (_set(["edges", 0, "source", "type"], "clp"),
                               r"edges\[0\]\.source\.type: unknown node type 'clp' .*did you mean 'clip'\?"),
    "misspelt edge key": (_rename(["edges", 0], "relation", "relaton"),
                          r"edges\[0\]\.relaton: unknown key .*did you mean 'relation'\?"),
    "edge without table or triples": (_set(["edges", 0], {"relation": "x"}),
                                      r"edges\[0\]: an edge entry needs either 'table'"),
    "misspelt triples key": (_set(["edges", 1], {"tripels": "t.txt", "source_type": "e", "target_type": "e"}),
                             r"edges\[1\]\.tripels: unknown key .*did you mean 'triples'\?"),
    "misspelt split file": (_set(["edges", 1, "triples"], {"tran": "train.txt"}),
                            r"edges\[1\]\.triples\.tran: unknown key .*did you mean 'train'\?"),
    "missing triples file": (_set(["edges", 1, "triples"], {"test": "test.txt"}),
                             r"edges\[1\]\.triples\.test: triples file 'test\.txt' not found"),
    "edges not a list": (_set(["edges"], {"relation": "x"}), r"edges: expected a list"),
    "edge type twice": (lambda m: m["edges"].append(copy.deepcopy(m["edges"][0])),
                        r"edges\[2\]: edge type \('clip', 'says', 'word'\) is declared twice"),
    "feature not a mapping": (_set(["nodes", "clip", "features", "sound"], "audio"),
                              r"nodes\.clip\.features\.sound: expected a mapping, got str"),
}
CASES["header for jsonl"] = (
    lambda m: m["nodes"]["word"].update(format="jsonl", header=["word", "pos"]),
    r"nodes\.word\.header: only applies to csv/tsv",
)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_manifest_names_file_and_field(case, dataset):
    mutate, pattern = CASES[case]
    manifest = copy.deepcopy(BASE)
    mutate(manifest)
    path = dataset(manifest)
    with pytest.raises(InputError) as err:
        load_manifest(path)
    message = str(err.value)
    assert message.startswith(f"{path}: "), message
    assert __import__("re").search(pattern, message), message


def test_yaml_syntax_error_names_line(tmp_path):
    path = tmp_path / "manifest.yaml"
    path.write_text("nodes:\n  clip: {table: a.csv\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"manifest\.yaml: line \d+, column \d+: invalid YAML"):
        load_manifest(path)


def test_missing_and_empty_manifest(tmp_path):
    with pytest.raises(InputError, match="manifest file not found"):
        load_manifest(tmp_path / "absent.yaml")
    (tmp_path / "empty.yaml").write_text("", encoding="utf-8")
    with pytest.raises(InputError, match="empty.yaml: empty manifest"):
        load_manifest(tmp_path / "empty.yaml")
