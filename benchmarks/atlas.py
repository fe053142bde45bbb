"""Activation atlas: the time of each stage per 10^4 samples, peak memory of the layout at 10^4 and
10^5 samples, and the paper's known answer on planted patterns.

    python benchmarks/atlas.py [--per-pattern 64] [--size 64] [--layer _blocks.5] [--samples 4]
                               [--grid 8] [--icon 64] [--steps 128] [--memory 10000,100000]

Stages, on planted patterns that fill the frame (``synthviz.evaluation.planted``) and the embedded
model, in one process, after untimed warm-ups (kernels, numba's compilation of UMAP): the index pass with samples and the same pass without them (the ratio is the
samples' cost: one more forward and backward per layer), the layout (UMAP and t-SNE on the same
samples), the binning, the icon renders (per icon) and the files and page. Each is printed as
seconds per 10^4 samples (renders: per icon). Memory: ``gather`` + layout + binning of N samples (the
planted samples repeated with noise) in a child process each, its peak resident memory. The known
answer: cell purity (each sample labelled by the mask under its position) and whether each icon,
passed through the model, is nearest (cosine of mean activations) to a cell of its own pattern.
"""

from __future__ import annotations

import argparse
import collections
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, {platform.system()}"


def memory_child(n: int, channels: int, method: str) -> dict:
    """Layout + binning of ``n`` synthetic samples in this process; its peak resident memory."""
    from synthviz.dataset.atlas import Layout, embed_vectors, grid_cells

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, channels)).astype(np.float32)
    vectors = centres[rng.integers(0, 4, n)] + 0.3 * rng.normal(size=(n, channels)).astype(np.float32)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.perf_counter()
    coords, used = embed_vectors(vectors, method)
    cells = grid_cells(Layout(np.arange(n), vectors, np.ones(n), np.zeros(n, int), coords, used), 20, 2)
    return {"n": n, "method": used, "seconds": time.perf_counter() - t, "cells": len(cells.count),
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "before_mb": before}


def labels_of(run, layer: str, planted: Path, per: int) -> list[str]:
    from synthviz.io.decode import read_array

    h, w = run.manifest["layers"][layer]["shape"][1:]
    s, out = run.samples(layer), []
    for i, p in zip(np.repeat(np.arange(len(run.paths)), per), np.asarray(s["positions"]).reshape(-1)):
        path = Path(run.paths[i])
        mask = read_array(planted / "masks" / path.parent.name / path.name)
        mask = mask[..., 0] if mask.ndim == 3 else mask
        y, x = divmod(int(p), w)
        out.append(path.parent.name if mask[int((y + .5) * mask.shape[0] / h), int((x + .5) * mask.shape[1] / w)] else "noise")
    return out


def stages(args) -> None:
    import synthviz
    from synthviz.dataset import index, open_run
    from synthviz.dataset.atlas import embed_vectors, grid_cells, icon_activations, layout, render_icons
    from synthviz.dataset.atlas_page import write_atlas
    from synthviz.evaluation.planted import write_planted

    tmp = Path(tempfile.mkdtemp(prefix="atlas-bench-"))
    planted = write_planted(tmp / "planted", per_pattern=args.per_pattern, size=args.size, fill=True)
    model = synthviz.load_model("efficientnet_lite0")
    timings = {}
    # warm-ups, untimed: oneDNN kernels and the receptive-field measurement, numba's compilation of UMAP
    index(planted / "labels.csv", tmp / "warm-up", model=model, layers=args.layer, size=args.size, workers=0,
          progress=False, samples_per_image=1)
    embed_vectors(np.random.default_rng(0).normal(size=(64, 8)), "umap")
    for repeat in range(2):  # alternating, the faster of two each (the machine may be shared)
        for name, samples in (("index without samples", 0), ("index with samples", args.samples)):
            t = time.perf_counter()
            index(planted / "labels.csv", tmp / f"{name.replace(' ', '-')}-{repeat}", model=model, layers=args.layer,
                  size=args.size, workers=0, progress=False, samples_per_image=samples)
            timings[name] = min(timings.get(name, np.inf), time.perf_counter() - t)
    run = open_run(tmp / "index-with-samples-0")
    n = len(run.paths) * args.samples
    lays = {}
    for method in ("umap", "tsne"):
        t = time.perf_counter()
        lays[method] = layout(run, args.layer, method=method)
        timings[f"layout {method}"] = time.perf_counter() - t
    t = time.perf_counter()
    cells = grid_cells(lays["umap"], args.grid, 2)
    timings["binning"] = time.perf_counter() - t
    t = time.perf_counter()
    icons = render_icons(model, args.layer, cells.means, size=args.icon, steps=args.steps)
    timings["icons"] = time.perf_counter() - t
    t = time.perf_counter()
    write_atlas(run, model, tmp / "atlas", args.layer, lays["umap"], [("all", np.arange(n))], grid=args.grid,
                min_count=2, size=args.icon, steps=1)
    timings["files and page (1-step icons)"] = time.perf_counter() - t
    print(f"# atlas stages ({machine()}): {len(run.paths)} images x {args.samples} samples = {n} samples, "
          f"{args.layer}, {args.size} px, {len(cells.count)} cells")
    for name, seconds in timings.items():
        per = f"{seconds / len(cells.count):.2f} s per icon ({args.icon} px, {args.steps} steps)" if name == "icons" \
            else f"{seconds * 1e4 / n:.1f} s per 10^4 samples"
        print(f"{name:32s} {seconds:8.2f} s   {per}")
    print(f"samples' cost: index with / without = {timings['index with samples'] / timings['index without samples']:.2f}")
    labels = labels_of(run, args.layer, planted, args.samples)
    purity = np.mean([collections.Counter(labels[j] for j in m).most_common(1)[0][1] / len(m) for m in cells.members])
    pattern = [collections.Counter(labels[j] for j in m).most_common(1)[0][0] for m in cells.members]
    acts = torch.nn.functional.normalize(icon_activations(model, args.layer, icons), dim=1)
    nearest = (acts @ torch.nn.functional.normalize(torch.from_numpy(cells.means), dim=1).T).argmax(1).tolist()
    own = np.mean([pattern[k] == p for k, p in zip(nearest, pattern)])
    print(f"cell purity (mean over cells): {purity:.3f}; icons nearest a cell of their own pattern: {own:.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--per-pattern", type=int, default=64)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--layer", default="_blocks.5")
    p.add_argument("--samples", type=int, default=4)
    p.add_argument("--grid", type=int, default=8)
    p.add_argument("--icon", type=int, default=64)
    p.add_argument("--steps", type=int, default=128)
    p.add_argument("--memory", default="10000,100000", help="sample counts for the memory runs ('' for none)")
    p.add_argument("--method", default="umap", help="layout of the memory runs")
    p.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child is not None:
        print(json.dumps(memory_child(args.child, 80, args.method)))
        return
    stages(args)
    for n in [int(v) for v in args.memory.split(",") if v]:
        out = subprocess.run([sys.executable, __file__, "--child", str(n), "--method", args.method],
                             capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        found = json.loads(out)
        print(f"layout + binning of {n} samples ({found['method']}): {found['seconds']:.1f} s, "
              f"peak memory {found['peak_mb']:.0f} MB ({found['before_mb']:.0f} MB before the layout)")


if __name__ == "__main__":
    main()
