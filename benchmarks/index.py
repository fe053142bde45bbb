"""Indexing a dataset: throughput against the bare truncated forward pass, peak memory at 1x and
10x the images, and top-k against brute force.

    python benchmarks/index.py [--images 64] [--size 160] [--layer _blocks.8] [--batch-size 32]

Each measurement runs in its own process (so peak memory is that run's own). Prints images/s of
the bare truncated forward over pre-loaded images and of ``synthviz.dataset.index`` over the same
image files (reading and resizing included, in one DataLoader worker), their ratio, the peak
resident memory of the indexing process at 1x and 10x the images, and whether top-k equals a
brute-force sort of the whole activation tensor.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def make_images(folder: Path, n: int, seed: int = 0) -> None:
    """``n`` JPEGs (192 px): random crops, flips and colour changes of scikit-image photos."""
    import imageio.v3 as iio
    import skimage.data

    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        photos = [getattr(skimage.data, name)() for name in ("chelsea", "astronaut", "coffee", "rocket")]
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        a = photos[i % len(photos)]
        h, w = a.shape[:2]
        ch, cw = int(h * rng.uniform(0.5, 1)), int(w * rng.uniform(0.5, 1))
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        crop = a[y : y + ch, x : x + cw].astype(float) * rng.uniform(0.7, 1.3, size=3)
        crop = crop[:, ::-1] if rng.random() < 0.5 else crop
        from skimage.transform import resize

        small = resize(np.clip(crop, 0, 255) / 255, (192, 192 * cw // ch), anti_aliasing=True)
        iio.imwrite(folder / f"{i:05d}.jpg", (small * 255).astype(np.uint8), quality=90)


def child(args) -> dict:
    """One measurement in this process: ``bare``, ``index`` or ``brute``."""
    import torch

    import synthviz
    from synthviz.dataset import Run, index
    from synthviz.dataset.index import forward_batch
    from synthviz.dataset.sources import find_images, read_image
    from synthviz.layers import Tap

    torch.set_num_threads(args.threads)
    model = synthviz.load_model("efficientnet_lite0", device="cpu")
    paths = find_images(args.data).paths
    if args.mode == "bare":
        batches = [torch.stack([read_image(p, args.size) for p in paths[i : i + args.batch_size]])
                   for i in range(0, len(paths), args.batch_size)]
        with Tap(model, [args.layer]) as tap:
            forward_batch(model, tap, batches[0], "max")  # warm-up
            start = time.perf_counter()
            for b in batches:
                forward_batch(model, tap, b, "max")
            seconds = time.perf_counter() - start
        return {"images_per_s": len(paths) / seconds}
    if args.mode == "index":
        start = time.perf_counter()
        index(args.data, args.out, model=model, layers=args.layer, size=args.size, batch_size=args.batch_size,
              workers=1, progress=False, overwrite=True)
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return {"images_per_s": len(paths) / seconds, "peak_mb": peak}
    # brute: the whole activation tensor at once, sorted per unit
    images = torch.stack([read_image(p, args.size) for p in paths])
    act = synthviz.capture(model, images, [args.layer])[args.layer]
    values = act.flatten(2).amax(-1)
    order = torch.argsort(values.T, dim=1, descending=True, stable=True)[:, :16]
    same = torch.equal(Run(args.out).stats(args.layer).top_i, order)
    return {"topk_identical": bool(same)}


def measure(mode: str, data: Path, out: Path, args) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--data", str(data), "--out", str(out), "--size", str(args.size),
           "--layer", args.layer, "--batch-size", str(args.batch_size), "--threads", str(args.threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=64, help="images at 1x (10x is ten times that)")
    ap.add_argument("--size", type=int, default=160)
    ap.add_argument("--layer", default="_blocks.8")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (one more core reads images)")
    ap.add_argument("--child", default=None)
    ap.add_argument("--data", type=Path)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(argparse.Namespace(**{**vars(args), "mode": args.child}))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_images(tmp / "x1", args.images)
        make_images(tmp / "x10", 10 * args.images)
        bare = measure("bare", tmp / "x10", tmp / "unused", args)
        big = measure("index", tmp / "x10", tmp / "run10", args)
        small = measure("index", tmp / "x1", tmp / "run1", args)
        brute = measure("brute", tmp / "x1", tmp / "run1", args)
    ratio = big["images_per_s"] / bare["images_per_s"]
    print(f"bare truncated forward   {bare['images_per_s']:7.1f} images/s  ({10 * args.images} images, pre-loaded)")
    print(f"index (read + forward)   {big['images_per_s']:7.1f} images/s  ({10 * args.images} image files)")
    print(f"throughput ratio         {ratio:7.2f}  (target >= 0.9)")
    print(f"peak memory              {small['peak_mb']:7.0f} MB at {args.images} images, "
          f"{big['peak_mb']:.0f} MB at {10 * args.images} ({big['peak_mb'] / small['peak_mb']:.2f}x for 10x the images)")
    print(f"top-k vs brute force     {'identical' if brute['topk_identical'] else 'DIFFERENT'}")
    print(f"({args.layer}, {args.size} px, batch {args.batch_size}, {args.threads} torch thread(s) + 1 reader, CPU)")


if __name__ == "__main__":
    main()
