"""Indexing a dataset: throughput against the bare truncated forward pass, peak memory at 1x and
10x the images, and top-k against brute force.

    python benchmarks/index.py [--images 64] [--size 160] [--layer _blocks.8] [--batch-size 32] [--repeats 3]

Each measurement runs in its own process (so peak memory is that run's own). Prints images/s of
the bare truncated forward over images decoded beforehand and of ``synthviz.dataset.index`` over the
same image files (reading and resizing included, in one DataLoader worker: the index does more work
than the floor), at the same batch size, both after the same one-batch warm-up; bare and index
runs alternate ``--repeats`` times and medians are compared (the machine may be shared). Also the
peak resident memory of the indexing process at 1x and 10x the images, and whether top-k equals a
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
from machine import machine


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
    """One measurement in this process: ``bare``, ``index`` or ``brute``.

    ``bare`` and ``index`` both warm the model up with one batch first (oneDNN builds its kernels
    on the first call of a shape), so neither pays for that inside its timing. ``bare`` times the
    truncated forward over images decoded beforehand; ``index`` times the whole call (files in,
    files out: decoding in a DataLoader worker, the receptive-field measurement, writes) and, from
    its per-batch callback, the streaming part alone."""
    import torch

    import synthviz
    from synthviz.dataset import Run, index
    from synthviz.dataset.forward import forward_batch, index_tap
    from synthviz.cost import check_size
    from synthviz.dataset.sources import find_images, read_image

    torch.set_num_threads(args.threads)
    model = synthviz.load_model("efficientnet_lite0", device="cpu")
    paths = find_images(args.data).paths
    warm = torch.rand(args.batch_size, 3, args.size, args.size)
    if args.mode == "bare":
        # the same setup as the index call: measured on this machine, the check and the receptive
        # field's backward pass leave later forwards ~1.5x faster (oneDNN state), so both get it
        from synthviz.dataset.index import _layer_info

        check_size(model, args.size)
        _layer_info(model, [args.layer], args.size)
    if args.mode in ("bare", "index"):
        with model.evaluating(), index_tap(model, [args.layer]) as tap:
            forward_batch(model, tap, warm, "max")
    if args.mode == "bare":
        batches = [torch.stack([read_image(p, args.size) for p in paths[i : i + args.batch_size]])
                   for i in range(0, len(paths), args.batch_size)]
        stamps = []
        with model.evaluating(), index_tap(model, [args.layer]) as tap:
            start = time.perf_counter()
            for b in batches:
                forward_batch(model, tap, b, "max")
                stamps.append(time.perf_counter())
        seconds = stamps[-1] - start
        return {"images_per_s": len(paths) / seconds, "steady_per_s": (len(paths) - len(batches[0])) / max(stamps[-1] - stamps[0], 1e-9)}
    if args.mode == "index":
        stamps = []
        start = time.perf_counter()
        index(args.data, args.out, model=model, layers=args.layer, size=args.size, batch_size=args.batch_size,
              workers=1, progress=False, overwrite=True, on_batch=lambda done: stamps.append(time.perf_counter()))
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return {"images_per_s": len(paths) / seconds, "peak_mb": peak, "setup_s": stamps[0] - start,
                "steady_per_s": (len(paths) - args.batch_size) / max(stamps[-1] - stamps[0], 1e-9)}
    # brute: the whole activation tensor at once, sorted per unit
    images = torch.stack([read_image(p, args.size) for p in paths])
    act = synthviz.capture(model, images, [args.layer])[args.layer]
    values = act.flatten(2).amax(-1)
    k = min(16, len(paths))
    order = torch.argsort(values.T, dim=1, descending=True, stable=True)[:, :k]
    same = torch.equal(Run(args.out).stats(args.layer).top_i[:, :k], order)
    return {"topk_identical": bool(same)}


def measure(mode: str, data: Path, out: Path, args) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--data", str(data), "--out", str(out), "--size", str(args.size),
           "--layer", args.layer, "--batch-size", str(args.batch_size), "--threads", str(args.threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=64, help="images at 1x (10x is ten times that)")
    ap.add_argument("--size", type=int, default=160)
    ap.add_argument("--layer", default="_blocks.8")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (one more core reads images)")
    ap.add_argument("--repeats", type=int, default=3, help="alternating bare/index runs at 10x; medians are reported")
    ap.add_argument("--child", default=None)
    ap.add_argument("--data", type=Path)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(argparse.Namespace(**{**vars(args), "mode": args.child}))))
        return
    from statistics import median

    loads = [load()]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_images(tmp / "x1", args.images)
        make_images(tmp / "x10", 10 * args.images)
        bare, big = [], []
        for _ in range(args.repeats):  # alternating, so a burst of load elsewhere hits both
            bare.append(measure("bare", tmp / "x10", tmp / "unused", args))
            big.append(measure("index", tmp / "x10", tmp / "run10", args))
        small = measure("index", tmp / "x1", tmp / "run1", args)
        brute = measure("brute", tmp / "x1", tmp / "run1", args)
    loads.append(load())
    med = lambda runs, key: median(r[key] for r in runs)  # noqa: E731
    pairs = sorted(i["images_per_s"] / b["images_per_s"] for b, i in zip(bare, big))
    n = 10 * args.images
    print(f"bare truncated forward   {med(bare, 'images_per_s'):7.1f} images/s  ({n} images decoded beforehand; "
          f"median of {args.repeats})")
    print(f"index, whole call        {med(big, 'images_per_s'):7.1f} images/s  ({n} image files: decoding, receptive "
          f"field, writes; setup {med(big, 'setup_s'):.2f} s)")
    print(f"throughput ratio         {med(big, 'images_per_s') / med(bare, 'images_per_s'):7.2f}  (target >= 0.9; "
          f"per pair {', '.join(f'{p:.2f}' for p in pairs)})")
    print(f"streaming part ratio     {med(big, 'steady_per_s') / med(bare, 'steady_per_s'):7.2f}  (after the first batch "
          f"of each: {med(big, 'steady_per_s'):.1f} vs {med(bare, 'steady_per_s'):.1f} images/s)")
    peak = max(r["peak_mb"] for r in big)
    print(f"peak memory              {small['peak_mb']:7.0f} MB at {args.images} images, "
          f"{peak:.0f} MB at {n} ({peak / small['peak_mb']:.2f}x for 10x the images)")
    print(f"top-k vs brute force     {'identical' if brute['topk_identical'] else 'DIFFERENT'}")
    print(f"({args.layer}, {args.size} px, batch {args.batch_size}, {args.threads} torch thread(s) + 1 reader, CPU; "
          f"load average {loads[0]} before, {loads[1]} after)")


if __name__ == "__main__":
    main()
    print(machine())  # the machine the figures above were measured on
