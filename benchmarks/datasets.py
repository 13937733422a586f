"""Writers that turn the published sets in ../shared/data into mmgraph manifests, and graph builds.

Each writer puts a `manifest.yaml` (and any table or `.npy` it needs) into a work folder and
returns the manifest's path; `build_graph_dir` builds it with mmgraph once and caches the graph:

- knowledge graphs (`umls`, `kinships`, `wn18rr`): the dataset's own train/valid/test triple
  files as `triples:` edges between `entity` nodes, one edge type per relation, the given split;
- `wn18rr_text`, `umls_text`: the same, with each entity's text from kg_text as a text feature
  (WN18RR: "synset, gloss"; UMLS: the concept's name);
- `cora`: Planetoid Cora (Kipf & Welling's pickles) as `paper` nodes with their 1433-d
  bag-of-words as a `vector` feature (`npy:`) and the 5278 undirected citations, each once, as
  one relation `cites`; mmgraph draws the seeded 85/5/10 edge split;
- `digits`: the demo's cut of FSDD and the digit images; `digits_full`: all of both (four
  speakers, 1797 images);
- `emoji`, `emoji_nosplit`: Unicode's emoji from Debian packages (`emoji_graph.py`), with and
  without a split column.

    manifest = write_manifest("umls", Path("/tmp/mmgraph-quality"))
    graph_dir = build_graph_dir(manifest, Path("/tmp/mmgraph-quality/umls/graph"))
"""
from __future__ import annotations

import csv
import pickle
from pathlib import Path

import numpy as np
import yaml

from mmgraph.errors import InputError

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
KG_FOLDERS = {"umls": "umls", "kinships": "kinships", "wn18rr": "WN18RR"}
DATASETS = ("umls", "umls_text", "kinships", "wn18rr", "wn18rr_text", "cora", "digits", "digits_full", "emoji",
            "emoji_nosplit")
DEMO = Path(__file__).resolve().parents[1] / "datasets" / "digits-av"

__all__ = ["DATA", "DATASETS", "write_manifest", "write_kg_manifest", "write_cora_manifest", "write_csv",
           "dump_manifest", "load_cora", "build_graph_dir"]


def write_manifest(name: str, work: Path, *, data: Path = DATA) -> Path:
    """The manifest of dataset `name` (one of DATASETS), written under `work/name/`."""
    if name == "cora":
        return write_cora_manifest(work / name, data=data)
    if name == "digits":
        return write_digits_manifest(work / name)
    if name == "digits_full":
        return write_digits_full_manifest(work / name, data=data)
    if name in ("emoji", "emoji_nosplit"):
        from emoji_graph import write_emoji_manifest   # needs Debian packages: imported on use

        return write_emoji_manifest(work / name, split=name == "emoji")
    if name.endswith("_text") and name[:-5] in KG_FOLDERS:
        return write_kg_manifest(name[:-5], work / name, data=data, with_text=True)
    if name in KG_FOLDERS:
        return write_kg_manifest(name, work / name, data=data)
    raise InputError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")


def write_kg_manifest(name: str, out: Path, *, data: Path = DATA, with_text: bool = False) -> Path:
    """A triples-only manifest over the dataset's own split (paths absolute: nothing is copied)."""
    folder = data / "kg" / KG_FOLDERS[name]
    files = {split: str(folder / f"{split}.txt") for split in ("train", "valid", "test")}
    for split, path in files.items():
        if not Path(path).is_file():
            raise InputError(f"{path}: {name} {split} triples not found (see ../shared/data/SOURCES.md)")
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict = {"name": name + ("_text" if with_text else ""),
                      "edges": [{"triples": files, "source_type": "entity", "target_type": "entity"}]}
    if with_text:
        table = _write_entity_text(data / "kg_text" / KG_FOLDERS[name] / "entity2text.txt", out / "entities.tsv")
        manifest["nodes"] = {"entity": {"table": table.name, "id": "id",
                                        "features": {"gloss": {"modality": "text", "column": "text"}}}}
    return dump_manifest(manifest, out)


def _write_entity_text(source: Path, table: Path) -> Path:
    """`id<TAB>text` (no header) -> a TSV node table with header `id, text`."""
    if not source.is_file():
        raise InputError(f"{source}: entity text not found (see ../shared/data/SOURCES.md)")
    with open(source, encoding="utf-8") as f_in, open(table, "w", encoding="utf-8", newline="") as f_out:
        writer = csv.writer(f_out, delimiter="\t", quoting=csv.QUOTE_MINIMAL)
        writer.writerow(["id", "text"])
        for line_no, line in enumerate(f_in, start=1):
            parts = line.rstrip("\r\n").split("\t", 1)
            if len(parts) != 2:
                raise InputError(f"{source}: line {line_no}: expected id<TAB>text")
            writer.writerow(parts)
    return table


def load_cora(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Planetoid Cora: features `[2708, 1433]` float32 and undirected edges `[2, 5278]` (i < j).

    Rows follow the GAE/GCN loaders: `allx` then `tx`, with the test rows put back at the
    positions `ind.cora.test.index` names; the adjacency lists are symmetrised, self loops and
    repeats dropped.
    """
    def load(part: str):
        path = folder / f"ind.cora.{part}"
        if not path.is_file():
            raise InputError(f"{path}: Cora file not found (see ../shared/data/SOURCES.md)")
        with open(path, "rb") as f:
            return pickle.load(f, encoding="latin1")  # written by Python 2

    allx, tx, graph = load("allx"), load("tx"), load("graph")
    test_index = np.loadtxt(folder / "ind.cora.test.index", dtype=np.int64)
    features = np.vstack([allx.toarray(), tx.toarray()]).astype(np.float32)
    features[test_index] = features[np.sort(test_index)]
    pairs = {(min(a, b), max(a, b)) for a, targets in graph.items() for b in targets if a != b}
    edges = np.array(sorted(pairs), dtype=np.int64).T
    if edges.max() >= features.shape[0]:
        raise InputError(f"{folder}: ind.cora.graph names node {edges.max()}, but there are "
                         f"{features.shape[0]} feature rows")
    return features, edges


def write_cora_manifest(out: Path, *, data: Path = DATA) -> Path:
    """Node table + `.npy` bag-of-words + one undirected `cites` edge table."""
    features, edges = load_cora(data / "cora")
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "features.npy", features)
    manifest = {
        "name": "cora",
        "nodes": {"paper": {"table": write_csv(out / "papers.csv", ("id",), ([i] for i in range(features.shape[0]))),
                            "id": "id", "features": {"words": {"modality": "vector", "npy": "features.npy"}}}},
        "edges": [{"relation": "cites", "table": write_csv(out / "cites.csv", ("source", "target"), edges.T.tolist()),
                   "source": {"type": "paper", "column": "source"},
                   "target": {"type": "paper", "column": "target"}}],
    }
    return dump_manifest(manifest, out)


def write_digits_manifest(out: Path, *, demo: Path = DEMO, knn: bool = True) -> Path:
    """The demo's spoken and written digits (from ../shared/data/fsdd and digits) as a plain manifest:
    nodes, features and edges only, no encoder choices and no kNN lines, so the defaults decide.
    `knn=False` adds `knn: false` to the media types (the builder's default relations off)."""
    out.mkdir(parents=True, exist_ok=True)
    for media in ("clips", "images"):   # the tables' media paths are relative to the manifest's folder
        link = out / media
        if not link.exists():
            link.symlink_to(demo / media, target_is_directory=True)
    off = {} if knn else {"knn": False}
    manifest = {
        "name": "digits-plain",
        "nodes": {
            "clip": {"table": str(demo / "clips.csv"), "id": "clip_id",
                     "features": {"sound": {"modality": "audio", "column": "path"}}, **off},
            "image": {"table": str(demo / "images.csv"), "id": "image_id",
                      "features": {"picture": {"modality": "image", "column": "file"}}, **off},
            "word": {"table": str(demo / "words.csv"), "id": "word",
                     "features": {"name": {"modality": "text", "column": "text"}}},
            "speaker": {"table": str(demo / "speakers.csv"), "id": "speaker"},
        },
        "edges": [
            {"relation": "says", "table": str(demo / "clip_says_word.csv"), "split": "split",
             "source": {"type": "clip", "column": "clip_id"}, "target": {"type": "word", "column": "word"}},
            {"relation": "shows", "table": str(demo / "image_shows_word.csv"), "split": "split",
             "source": {"type": "image", "column": "image_id"}, "target": {"type": "word", "column": "word"}},
            {"relation": "spoken_by", "table": str(demo / "clip_spoken_by.csv"),
             "source": {"type": "clip", "column": "clip_id"}, "target": {"type": "speaker", "column": "speaker"}},
        ],
    }
    return dump_manifest(manifest, out)


def write_digits_full_manifest(out: Path, *, data: Path = DATA, demo: Path = DEMO) -> Path:
    """All of FSDD (2000 clips, four speakers) and all 1797 digit images as a plain manifest.

    Clips: FSDD's customary split (takes 0-4 test), take 5 valid; images: every fifth of each
    digit test, every tenth valid. The 8x8 grey levels are written as PNGs, as the demo's are;
    the words are the demo's table (row d is digit d).
    """
    import gzip

    from PIL import Image

    recordings = data / "fsdd" / "recordings"
    wavs = sorted(recordings.glob("*.wav"))
    if not wavs:
        raise InputError(f"{recordings}: no FSDD recordings (see ../shared/data/SOURCES.md)")
    with open(demo / "words.csv", newline="") as f:
        words = [row["word"] for row in csv.DictReader(f)]
    (out / "images").mkdir(parents=True, exist_ok=True)
    clips, says, spoken_by = [], [], []
    for wav in wavs:
        digit, speaker, take = wav.stem.split("_")
        split = "test" if int(take) <= 4 else "valid" if int(take) == 5 else "train"
        clips.append((wav.stem, str(wav)))
        says.append((wav.stem, words[int(digit)], split))
        spoken_by.append((wav.stem, speaker))
    with gzip.open(data / "digits" / "digits.csv.gz", "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    images, shows, seen = [], [], {d: 0 for d in range(10)}
    for row in table:
        digit = int(row[-1])
        i, seen[digit] = seen[digit], seen[digit] + 1
        image_id = f"img_{digit}_{i:03d}"
        path = out / "images" / f"{image_id}.png"
        if not path.is_file():
            Image.fromarray((row[:64].reshape(8, 8) * 255 // 16).astype(np.uint8), mode="L").save(path)
        images.append((image_id, f"images/{image_id}.png"))
        shows.append((image_id, words[digit], "test" if i % 5 == 0 else "valid" if i % 10 == 1 else "train"))
    manifest = {
        "name": "digits-full",
        "nodes": {
            "clip": {"table": write_csv(out / "clips.csv", ("clip_id", "path"), clips), "id": "clip_id",
                     "features": {"sound": {"modality": "audio", "column": "path"}}},
            "image": {"table": write_csv(out / "images.csv", ("image_id", "file"), images), "id": "image_id",
                      "features": {"picture": {"modality": "image", "column": "file"}}},
            "word": {"table": str(demo / "words.csv"), "id": "word",
                     "features": {"name": {"modality": "text", "column": "text"}}},
            "speaker": {"table": write_csv(out / "speakers.csv", ("speaker",), sorted({(s,) for _, s in spoken_by})),
                        "id": "speaker"},
        },
        "edges": [
            {"relation": "says", "table": write_csv(out / "says.csv", ("clip_id", "word", "split"), says),
             "split": "split", "source": {"type": "clip", "column": "clip_id"},
             "target": {"type": "word", "column": "word"}},
            {"relation": "shows", "table": write_csv(out / "shows.csv", ("image_id", "word", "split"), shows),
             "split": "split", "source": {"type": "image", "column": "image_id"},
             "target": {"type": "word", "column": "word"}},
            {"relation": "spoken_by", "table": write_csv(out / "spoken_by.csv", ("clip_id", "speaker"), spoken_by),
             "source": {"type": "clip", "column": "clip_id"}, "target": {"type": "speaker", "column": "speaker"}},
        ],
    }
    return dump_manifest(manifest, out)


def write_csv(path: Path, header, rows) -> str:
    """A CSV table with its header; returns the file name (what a manifest beside it names)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path.name


def dump_manifest(manifest: dict, out: Path) -> Path:
    path = out / "manifest.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path


def build_graph_dir(manifest: Path, graph_dir: Path, *, rebuild: bool = False) -> Path:
    """Build the manifest's graph into `graph_dir` once (reused while `graph.pt` exists)."""
    from mmgraph.data.builder import build_graph
    from mmgraph.data.graph_io import write_graph

    if (graph_dir / "graph.pt").is_file() and not rebuild:
        return graph_dir
    graph, report = build_graph(manifest, cache_dir=graph_dir.parent / "cache", return_report=True)
    write_graph(graph, report, graph_dir, force=True)
    return graph_dir
