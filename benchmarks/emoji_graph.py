"""An emoji graph nobody tuned for: real emoji pictures, names, subcategories, categories and versions.

A check of the no-config recipe on a media graph unlike the digits: each fully-qualified emoji of
Unicode's `emoji-test.txt` (skin-tone variants left out) becomes an `emoji` node with its picture
(rendered from the Noto Color Emoji font to a 72 x 72 RGBA PNG) and its name as text; its
subcategory, category and the Emoji version that added it become node types of their own (no
features), linked by `in_subcategory`, `in_category` and `added_in`. With `split=True`
`in_subcategory` carries a seeded 80/10/10 split (the relation scored); without, no edge table has
one and mmgraph draws the split and scores every relation. The manifest is plain: nodes, features
and edges only. `defaults.py --only emoji,emoji_nosplit` builds and trains it.

Needs Debian's `fonts-noto-color-emoji` and `unicode-data` (`apt-get install fonts-noto-color-emoji
unicode-data`); nothing of it is shipped with mmgraph.
"""
from __future__ import annotations

import random
import re
from pathlib import Path

from mmgraph.errors import InputError

TEST_FILE = Path("/usr/share/unicode/emoji/emoji-test.txt")
FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
_LINE = re.compile(r"^([0-9A-F ]+?)\s*; fully-qualified\s*# (\S+) E(\d+\.\d+) (.+)$")


def read_emoji(path: Path = TEST_FILE) -> list[dict]:
    """Rows of id, char, name, version, subcategory, category; skin-tone variants left out."""
    if not path.is_file():
        raise InputError(f"{path} not found: apt-get install unicode-data")
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


def write_emoji_manifest(out: Path, *, split: bool = True, seed: int = 0) -> Path:
    """The manifest (and its tables and PNGs) under `out`; returns the manifest's path."""
    from common import load_bench_datasets   # benchmarks/datasets.py, whose writer calls this one

    datasets = load_bench_datasets()
    write_csv, dump_manifest = datasets.write_csv, datasets.dump_manifest

    if not FONT.is_file():
        raise InputError(f"{FONT} not found: apt-get install fonts-noto-color-emoji")
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    rows = [r for r in read_emoji() if (images / f"{r['id']}.png").is_file() or render(r["char"], images / f"{r['id']}.png")]
    rng = random.Random(seed)

    def split_of() -> str:
        u = rng.random()
        return "test" if u < 0.1 else "valid" if u < 0.2 else "train"

    subcats = sorted({(r["subcategory"], r["category"]) for r in rows})
    manifest = {
        "name": "emoji",
        "nodes": {
            "emoji": {"table": write_csv(out / "emoji.csv", ("id", "image", "name"),
                                         [(r["id"], f"images/{r['id']}.png", r["name"]) for r in rows]),
                      "id": "id", "features": {"picture": {"modality": "image", "column": "image"},
                                               "name": {"modality": "text", "column": "name"}}},
            "subcategory": {"table": write_csv(out / "subcategories.csv", ("id",), [(s,) for s, _ in subcats]),
                            "id": "id"},
            "category": {"table": write_csv(out / "categories.csv", ("id",), sorted({(c,) for _, c in subcats})),
                         "id": "id"},
            "version": {"table": write_csv(out / "versions.csv", ("id",), sorted({(r["version"],) for r in rows})),
                        "id": "id"},
        },
        "edges": [
            {"relation": "in_subcategory",
             "table": write_csv(out / "in_subcategory.csv", ("emoji", "subcategory", "split"),
                                [(r["id"], r["subcategory"], split_of()) for r in rows]),
             **({"split": "split"} if split else {}),
             "source": {"type": "emoji", "column": "emoji"}, "target": {"type": "subcategory", "column": "subcategory"}},
            {"relation": "in_category", "table": write_csv(out / "in_category.csv", ("subcategory", "category"), subcats),
             "source": {"type": "subcategory", "column": "subcategory"}, "target": {"type": "category", "column": "category"}},
            {"relation": "added_in", "table": write_csv(out / "added_in.csv", ("emoji", "version"),
                                                        [(r["id"], r["version"]) for r in rows]),
             "source": {"type": "emoji", "column": "emoji"}, "target": {"type": "version", "column": "version"}},
        ],
    }
    return dump_manifest(manifest, out)
