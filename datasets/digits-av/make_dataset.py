"""Cut the embedded demo dataset `digits-av` from ../shared/data (run once; the output is committed).

Spoken digits (FSDD, three speakers, takes 0-15 of each digit), handwritten digits (UCI optdigits,
written as 8x8 greyscale PNG) and the ten number words, with the relations
clip -says-> word, image -shows-> word and clip -spoken_by-> speaker.
Takes 0-2 of each digit are the test clips and take 3 the validation clips (FSDD's customary test
split is takes 0-4); 20 % of the images of each digit are test, 10 % valid.
"""
from __future__ import annotations

import csv
import gzip
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[2] / "shared" / "data"
SPEAKERS = ["george", "jackson", "nicolas"]
TAKES = range(16)
IMAGES_PER_DIGIT = 30
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def main() -> None:
    (HERE / "clips").mkdir(exist_ok=True)
    (HERE / "images").mkdir(exist_ok=True)
    clips, says, spoken_by = [], [], []
    for speaker in SPEAKERS:
        for digit in range(10):
            for take in TAKES:
                name = f"{digit}_{speaker}_{take}.wav"
                shutil.copyfile(SHARED / "fsdd" / "recordings" / name, HERE / "clips" / name)
                clip_id = name[:-4]
                split = "test" if take <= 2 else "valid" if take == 3 else "train"
                clips.append([clip_id, f"clips/{name}"])
                says.append([clip_id, WORDS[digit], split])
                spoken_by.append([clip_id, speaker])

    with gzip.open(SHARED / "digits" / "digits.csv.gz", "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    images, shows = [], []
    for digit in range(10):
        rows = table[table[:, -1] == digit][:IMAGES_PER_DIGIT]
        for i, row in enumerate(rows):
            pixels = (row[:64].reshape(8, 8) * 255 // 16).astype(np.uint8)
            image_id = f"img_{digit}_{i:02d}"
            Image.fromarray(pixels, mode="L").save(HERE / "images" / f"{image_id}.png")
            split = "test" if i < IMAGES_PER_DIGIT // 5 else "valid" if i < IMAGES_PER_DIGIT * 3 // 10 else "train"
            images.append([image_id, f"images/{image_id}.png"])
            shows.append([image_id, WORDS[digit], split])

    write_csv(HERE / "clips.csv", ["clip_id", "path"], clips)
    write_csv(HERE / "images.csv", ["image_id", "file"], images)
    write_csv(HERE / "words.csv", ["word", "text"], [[w, f"{w} ({d})"] for d, w in enumerate(WORDS)])
    write_csv(HERE / "speakers.csv", ["speaker"], [[s] for s in SPEAKERS])
    write_csv(HERE / "clip_says_word.csv", ["clip_id", "word", "split"], says)
    write_csv(HERE / "image_shows_word.csv", ["image_id", "word", "split"], shows)
    write_csv(HERE / "clip_spoken_by.csv", ["clip_id", "speaker"], spoken_by)


if __name__ == "__main__":
    main()
