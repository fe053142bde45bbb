"""The README's picture of a unit page: index 240 crops of scikit-image photos, write the page of one
unit of the embedded model's ``_blocks.8`` and take a screenshot of it with headless Chromium.

    python benchmarks/unit_page.py [--unit 12] [--out docs/unit-page.png]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import numpy as np
from machine import machine

PHOTOS = ["astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "retina", "immunohistochemistry", "brick",
          "grass", "gravel", "camera", "coins"]


def make_crops(folder: Path, per_photo: int = 20, seed: int = 0) -> None:
    import imageio.v3 as iio
    import skimage.data
    from skimage.transform import resize

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in PHOTOS:
            a = getattr(skimage.data, name)()
            a = np.repeat(a[..., None], 3, 2) if a.ndim == 2 else a[..., :3]
            h, w = a.shape[:2]
            for i in range(per_photo):
                s = int(min(h, w) * rng.uniform(0.35, 0.9))
                y, x = rng.integers(0, h - s + 1), rng.integers(0, w - s + 1)
                crop = resize(a[y : y + s, x : x + s], (160, 160), anti_aliasing=True)
                iio.imwrite(folder / f"{name}-{i:02d}.jpg", (crop * 255).astype(np.uint8), quality=92)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--unit", type=int, default=12)
    ap.add_argument("--layer", default="_blocks.8")
    ap.add_argument("--out", type=Path, default=Path("docs/unit-page.png"))
    args = ap.parse_args()
    from synthviz.dataset import index
    from synthviz.dataset.pages import write_unit_pages

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_crops(tmp / "photos")
        run = index(tmp / "photos", tmp / "run", layers=args.layer, size=160, top_k=8, batch_size=32, workers=1)
        write_unit_pages(run, tmp / "site", units=[args.unit], viz_steps=256, viz_size=128, thumb=96)
        page = tmp / "site" / "units" / args.layer / f"{args.unit}.html"
        args.out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={tmp / 'chromium'}", "--window-size=1100,820",
                        f"--screenshot={args.out.resolve()}", page.as_uri()], check=True, capture_output=True, timeout=120)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
    print(machine())  # the machine the figures above were measured on
