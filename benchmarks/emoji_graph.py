"""An emoji graph nobody tuned for: real emoji images, names, subcategories, categories and versions.

A check of the no-config recipe on a media graph unlike the digits: each fully-qualified emoji of
Unicode's `emoji-test.txt` (skin-tone variants left out) becomes an `emoji` node with its picture
(rendered from the Noto Color Emoji font to a 72 x 72 RGBA PNG) and its name as text; its
subcategory, category and the Emoji version that added it become node types of their own (no
features), linked by `in_subcategory`, `in_category` and `added_in`. `in_subcategory` carries a
seeded 80/10/10 split (the relation scored); with `--no-split` no edge table has one and mmgraph
draws the split and scores every relation. The manifest is plain: nodes, features and edges only.

Needs Debian's `fonts-noto-color-emoji` and `unicode-data` (`apt-get install fonts-noto-color-emoji
unicode-data`); nothing of it is shipped with mmgraph.

    python benchmarks/emoji_graph.py --work /tmp/emoji --seeds 0,1,2
"""
from __future__ import annotations

import argparse
import csv
import json
import random
import re
import sys
import time
from pathlib import Path

from mmgraph.runtime import setup_process

setup_process()

TEST_FILE = Path("/usr/share/unicode/emoji/emoji-test.txt")
FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
_LINE = re.compile(r"^([0-9A-F ]+?)\s*; fully-qualified\s*# (\S+) E(\d+\.\d+) (.+)$")


def read_emoji(path: Path = TEST_FILE) -> list[dict]:
    """Rows of id, char, name, version, subcategory, category; skin-tone variants left out."""
    if not path.is_file():
        sys.exit(f"{path} not found: apt-get install unicode-data")
    rows, group, subgroup = [], "", ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# group:"):
            group = line.split(":", 1)[1].strip()
        elif line.startswith("# subgroup:"):
            subgroup = line.split(":", 1)[1].strip()
        elif (match := _LINE.match(line)) and "skin tone" not in match.group(4):
            code, char, version, name = match.groups()
            rows.append({"id": code.replace(" ", "_").lower(), "char": char, "name": name,
                         "version": f"E{version}", "subcategory": subgroup, "category": group})
    return rows


def render(char: str, out: Path, size: int = 72) -> bool:
    """The emoji drawn by the colour font (its bitmaps are 109 px) and scaled to size x size."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(FONT), 109)
    canvas = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((0, 0), char, font=font, embedded_color=True)
    box = canvas.getbbox()
    if box is None:
        return False
    canvas.crop(box).resize((size, size), Image.LANCZOS).save(out)
    return True


def write_manifest(work: Path, *, split: bool = True, seed: int = 0) -> Path:
    if not FONT.is_file():
        sys.exit(f"{FONT} not found: apt-get install fonts-noto-color-emoji")
    images = work / "images"
    images.mkdir(parents=True, exist_ok=True)
    rows = [r for r in read_emoji() if (images / f"{r['id']}.png").is_file() or render(r["char"], images / f"{r['id']}.png")]
    rng = random.Random(seed)

    def table(name: str, header: list[str], data) -> str:
        with open(work / name, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(data)
        return name

    def split_of() -> str:
        u = rng.random()
        return "test" if u < 0.1 else "valid" if u < 0.2 else "train"

    subcats = sorted({(r["subcategory"], r["category"]) for r in rows})
    manifest = {
        "name": "emoji",
        "nodes": {
            "emoji": {"table": table("emoji.csv", ["id", "image", "name"],
                                     [(r["id"], f"images/{r['id']}.png", r["name"]) for r in rows]),
                      "id": "id", "features": {"picture": {"modality": "image", "column": "image"},
                                               "name": {"modality": "text", "column": "name"}}},
            "subcategory": {"table": table("subcategories.csv", ["id"], [(s,) for s, _ in subcats]), "id": "id"},
            "category": {"table": table("categories.csv", ["id"], sorted({(c,) for _, c in subcats})), "id": "id"},
            "version": {"table": table("versions.csv", ["id"], sorted({(r["version"],) for r in rows})), "id": "id"},
        },
        "edges": [
            {"relation": "in_subcategory",
             "table": table("in_subcategory.csv", ["emoji", "subcategory", "split"],
                            [(r["id"], r["subcategory"], split_of()) for r in rows]),
             **({"split": "split"} if split else {}),
             "source": {"type": "emoji", "column": "emoji"}, "target": {"type": "subcategory", "column": "subcategory"}},
            {"relation": "in_category", "table": table("in_category.csv", ["subcategory", "category"], subcats),
             "source": {"type": "subcategory", "column": "subcategory"}, "target": {"type": "category", "column": "category"}},
            {"relation": "added_in", "table": table("added_in.csv", ["emoji", "version"],
                                                    [(r["id"], r["version"]) for r in rows]),
             "source": {"type": "emoji", "column": "emoji"}, "target": {"type": "version", "column": "version"}},
        ],
    }
    import yaml

    path = work / "manifest.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    print(f"emoji graph: {len(rows)} emoji, {len(subcats)} subcategories -> {path}", file=sys.stderr)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/mmgraph-emoji"))
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--no-split", action="store_true", help="no split column: mmgraph draws it")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import torch

    from mmgraph.data.builder import build_graph
    from mmgraph.data.graph_io import write_graph
    from mmgraph.eval.evaluate import evaluate_split
    from mmgraph.train.run import train_run

    work = args.work / ("nosplit" if args.no_split else "split")
    manifest = write_manifest(work, split=not args.no_split)
    graph_dir = work / "graph"
    if not (graph_dir / "graph.pt").is_file():
        graph, report = build_graph(manifest, cache_dir=args.work / "cache", return_report=True)
        write_graph(graph, report, graph_dir, force=True)
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        started = time.perf_counter()
        metrics = train_run(graph_dir, work / f"run-{seed}", {"seed": seed}, evaluate=evaluate_split,
                            device=torch.device("cpu"), force=True)
        row = {"seed": seed, "wall_s": round(time.perf_counter() - started, 1),
               "valid": metrics["valid"]["overall"], "test": metrics["test"]["overall"],
               "relations": {k: {m: v[m] for m in ("mrr", "hits@1", "hits@10")}
                             for k, v in metrics["test"]["relations"].items()}}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
