"""The two pictures of planted patterns in the docs, made with the public API as a user would:

* ``docs/atlas-planted.png``: ``synthviz.atlas`` of ``_blocks.5`` over 64 planted-pattern images
  (16 each of stripes, red disk, checkerboard, noise) at 64 px, 4 samples each, 6 x 6 grid, cells of
  at least 3 samples, 64-step icons;
* ``docs/concepts-red-disk.png``: ``synthviz.concepts.learn`` (NMF, 8 concepts, ``_blocks.5``) over
  80 planted-pattern images at 128 px; the page's grid of the top 16 images of the concept whose top
  images hold the red disk most often (printed: which concept, how many of its 16).

    python benchmarks/docs_planted.py [--out docs]
"""

from __future__ import annotations

import argparse
import csv
import shutil
import tempfile
import warnings
from pathlib import Path

from machine import machine


def atlas_figure(tmp: Path, out: Path) -> None:
    import synthviz
    from synthviz.evaluation.planted import write_planted

    planted = write_planted(tmp / "atlas-planted", per_pattern=16, size=64)
    synthviz.atlas("efficientnet_lite0", images=str(planted / "images" / "labels.csv"), layer="_blocks.5",
                   index_size=64, samples_per_image=4, grid=6, min_count=3, steps=64, out=str(tmp / "atlas"))
    shutil.copyfile(tmp / "atlas" / "atlas.png", out / "atlas-planted.png")
    with open(tmp / "atlas" / "cells.csv", newline="") as f:
        kept = {(int(c["x"]), int(c["y"])) for c in csv.DictReader(f)}
    with open(tmp / "atlas" / "samples.csv", newline="") as f:
        patterns = {}  # each kept cell's samples' patterns (the planted image's folder)
        for s in csv.DictReader(f):
            patterns.setdefault((int(s["x"]), int(s["y"])), []).append(Path(s["path"]).parent.name)
    print(f"{out / 'atlas-planted.png'}: {len(kept)} cells kept of 36; each kept cell's most frequent pattern "
          "(S stripes, R red disk, C checkerboard, N noise; lower case: under 3/4 of its samples), top row first:")
    for y in range(6):
        row = ""
        for x in range(6):
            found = patterns.get((x, y), []) if (x, y) in kept else []
            top = max(set(found), key=found.count) if found else None
            letter = {"stripes": "S", "red_disk": "R", "checkerboard": "C", "noise": "N"}.get(top, ".")
            row += letter if not found or found.count(top) >= 0.75 * len(found) else letter.lower()
        print("   " + row)


def concepts_figure(tmp: Path, out: Path) -> None:
    from synthviz.concepts import learn
    from synthviz.evaluation.planted import write_planted

    planted = write_planted(tmp / "concepts-planted", per_pattern=20, size=128)
    run = learn(planted / "images" / "labels.csv", tmp / "concepts", layer="_blocks.5", method="nmf", concepts=8,
                size=128, importance="gradient", workers=0, progress=False)
    with open(run / "concepts.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(r["rank"]) <= 16]
    disk = {}
    for r in rows:
        disk[int(r["concept"])] = disk.get(int(r["concept"]), 0) + ("red_disk" in Path(r["path"]).parent.name)
    best = max(sorted(disk), key=lambda k: disk[k])
    shutil.copyfile(run / "pages" / f"concept-{best:03d}-top.png", out / "concepts-red-disk.png")
    print(f"{out / 'concepts-red-disk.png'}: concept {best}, {disk[best]} of its top 16 images hold the red disk "
          f"(each concept's count: {dict(sorted(disk.items()))})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        atlas_figure(Path(tmp), args.out)
        concepts_figure(Path(tmp), args.out)
    print(machine())


if __name__ == "__main__":
    main()
