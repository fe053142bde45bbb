"""Activation atlas: the time of each stage per 10^4 samples, peak memory at 10^4 and 10^5 samples,
and the paper's known answer on planted patterns.

    python benchmarks/atlas.py [--per-pattern 64] [--size 64] [--layer _blocks.5] [--per-image 4]
                               [--grid 8] [--icon 64] [--steps 128] [--samples 10000,100000] [--method umap]
                               [--dissect 8,8,8,104]

Stages, on planted patterns that fill the frame (``synthviz.evaluation.planted``) and the embedded
model, in one process, after untimed warm-ups (kernels, numba's compilation of UMAP): the index pass
with samples and the same pass without them (the ratio is the samples' cost: one more forward and
backward per layer), the layout (UMAP and t-SNE on the same samples), the binning, the icon renders
(per icon) and the files and page. Each is printed as seconds per 10^4 samples (renders: per icon).

Scale (``--samples N,...``): for each N, a copy of the index whose memory-mapped sample files hold N
samples (the planted samples repeated, with 5 % noise), then in a fresh process each: ``gather``
from the memory-mapped files, the layout (``--method``; after an untimed warm-up layout of 64 points) and the binning, timed
per 10^4 samples, with
the process's peak resident memory (``resource``: before the work and at its end) and the peak of
the allocations Python and NumPy report (``tracemalloc``; UMAP's compiled code allocates through
NumPy). The known answer: cell purity (each sample labelled by the mask under its position) and
whether each icon, passed through the model, is nearest (cosine of mean activations) to a cell of
its own pattern, with the icons' two attempts (``ICON_SPECTRA``: 1/f and 1/f^1.5, the better
objective kept) and, untimed, with each spectrum alone.

``--per-pattern`` is one count for every pattern or one per pattern (stripes, red disk,
checkerboard, noise: ``16,16,16,208``). ``--dissect COUNTS`` (one per pattern; ``''`` for none):
Network Dissection at the paper's settings (top 0.5 %, IoU >= 0.04) on a planted set of those
counts whose patterns fill the frame, indexed without samples: how many of the units whose two top
images are stripes are labelled stripes, and the bound on any unit's IoU with each pattern,
0.005 / (the pattern's share of all pixels).
"""

from __future__ import annotations

import argparse
import collections
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from machine import machine


def scaled_copy(run: Path, layer: str, n: int, out: Path) -> Path:
    """A copy of the index ``run`` whose sample files hold ``n`` samples: its samples repeated (with
    5 % noise on the vectors), written chunk by chunk into memory-mapped .npy files."""
    import shutil

    from synthviz.dataset import open_run

    shutil.copytree(run, out, ignore=shutil.ignore_patterns("samples"))
    s = open_run(run).samples(layer)
    images, per, channels = s["vectors"].shape
    count = -(-n // per)  # images of the copy
    (out / "samples").mkdir()
    files = {"vectors": (f"{layer}.npy", np.float32, (count, per, channels)),
             "positions": (f"{layer}.pos.npy", np.int64, (count, per)),
             "attributions": (f"{layer}.attr.npy", np.float32, (count, per)), "predicted": ("predicted.npy", np.int64, (count,))}
    rng = np.random.default_rng(0)
    for key, (name, dtype, shape) in files.items():
        target = np.lib.format.open_memmap(out / "samples" / name, mode="w+", dtype=dtype, shape=shape)
        for start in range(0, count, images):
            stop = min(count, start + images)
            block = np.asarray(s[key][:stop - start])
            if key == "vectors":
                block = block * (1 + 0.05 * rng.standard_normal(block.shape)).astype(np.float32)
            target[start:stop] = block
        target.flush()
        del target
    return out


def scaled_child(run: str, layer: str, method: str, grid: int) -> dict:
    """``gather`` + layout + binning of the index ``run`` in this process: seconds per stage, peak memory."""
    import tracemalloc

    from synthviz.dataset import open_run
    from synthviz.dataset.atlas import Layout, embed_vectors, gather, grid_cells

    r = open_run(run)
    embed_vectors(np.random.default_rng(0).normal(size=(64, 8)), method)  # untimed: numba's compilation of UMAP
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tracemalloc.start()
    times = {}
    t = time.perf_counter()
    found = gather(r, layer, max_samples=10**9)
    times["gather (memory-mapped)"] = time.perf_counter() - t
    t = time.perf_counter()
    coords, used = embed_vectors(found["vectors"], method)
    times[f"layout ({used})"] = time.perf_counter() - t
    t = time.perf_counter()
    lay = Layout(found["images"], found["vectors"], found["attributions"], found["predicted"], coords, used)
    cells = grid_cells(lay, grid)
    times["binning"] = time.perf_counter() - t
    traced = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return {"n": len(found["vectors"]), "times": times, "cells": len(cells.count), "before_mb": before,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "traced_mb": traced}


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


def stages(args) -> Path:
    """The stages on planted patterns; returns the index with samples (for the scale runs)."""
    import synthviz
    from synthviz.dataset import index, open_run
    from synthviz.dataset.atlas import ICON_SPECTRA, embed_vectors, grid_cells, icon_activations, layout, render_icons
    from synthviz.dataset.atlas_page import write_atlas
    from synthviz.evaluation.planted import write_planted

    tmp = Path(tempfile.mkdtemp(prefix="atlas-bench-"))
    planted = write_planted(tmp / "planted", per_pattern=counts(args.per_pattern), size=args.size, fill=True)
    model = synthviz.load_model("efficientnet_lite0")
    timings = {}
    # warm-ups, untimed: oneDNN kernels and the receptive-field measurement, numba's compilation of UMAP
    index(planted / "images" / "labels.csv", tmp / "warm-up", model=model, layers=args.layer, size=args.size, workers=0,
          progress=False, samples_per_image=1)
    embed_vectors(np.random.default_rng(0).normal(size=(64, 8)), "umap")
    for repeat in range(2):  # alternating, the faster of two each (the machine may be shared)
        for name, samples in (("index without samples", 0), ("index with samples", args.per_image)):
            t = time.perf_counter()
            index(planted / "images" / "labels.csv", tmp / f"{name.replace(' ', '-')}-{repeat}", model=model,
                  layers=args.layer,
                  size=args.size, workers=0, progress=False, samples_per_image=samples)
            timings[name] = min(timings.get(name, np.inf), time.perf_counter() - t)
    run = open_run(tmp / "index-with-samples-0")
    n = len(run.paths) * args.per_image
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
    alone = {f"1/f^{d:g}": render_icons(model, args.layer, cells.means, size=args.icon, steps=args.steps, spectra=(d,))
             for d in ICON_SPECTRA}  # untimed
    t = time.perf_counter()
    write_atlas(run, model, tmp / "atlas", args.layer, lays["umap"], [("all", np.arange(n))], grid=args.grid,
                min_count=2, size=args.icon, steps=1)
    timings["files and page (1-step icons)"] = time.perf_counter() - t
    print(f"# atlas stages ({machine()}): {len(run.paths)} images x {args.per_image} samples = {n} samples, "
          f"{args.layer}, {args.size} px, {len(cells.count)} cells")
    for name, seconds in timings.items():
        per = f"{seconds / len(cells.count):.2f} s per icon ({args.icon} px, {args.steps} steps)" if name == "icons" \
            else f"{seconds * 1e4 / n:.1f} s per 10^4 samples"
        print(f"{name:32s} {seconds:8.2f} s   {per}")
    print(f"samples' cost: index with / without = {timings['index with samples'] / timings['index without samples']:.2f}")
    labels = labels_of(run, args.layer, planted, args.per_image)
    purity = np.mean([collections.Counter(labels[j] for j in m).most_common(1)[0][1] / len(m) for m in cells.members])
    pattern = [collections.Counter(labels[j] for j in m).most_common(1)[0][0] for m in cells.members]
    means = torch.nn.functional.normalize(torch.from_numpy(cells.means), dim=1)
    own = {}
    for name, images in {"both spectra": icons, **alone}.items():
        acts = torch.nn.functional.normalize(icon_activations(model, args.layer, images), dim=1)
        own[name] = np.mean([pattern[k] == p for k, p in zip((acts @ means.T).argmax(1).tolist(), pattern)])
    print(f"cell purity (mean over cells): {purity:.3f}; icons nearest a cell of their own pattern: "
          + ", ".join(f"{v:.2f} ({k})" for k, v in own.items()))
    return tmp / "index-with-samples-0"


def counts(text: str) -> int | list[int]:
    """``64`` -> 64 (every pattern), ``4,4,4,52`` -> one count per pattern."""
    values = [int(v) for v in str(text).split(",") if v]
    return values[0] if len(values) == 1 else values


def dissection(args) -> None:
    """Network Dissection at the paper's settings on a sparse frame-filling planted set."""
    import synthviz
    from synthviz.dataset import index, open_run
    from synthviz.dataset.dissect import dissect
    from synthviz.evaluation.planted import PATTERNS, planted_images, write_planted

    per, tmp = counts(args.dissect), Path(tempfile.mkdtemp(prefix="dissect-bench-"))
    model = synthviz.load_model("efficientnet_lite0")
    planted = write_planted(tmp / "planted", per_pattern=per, size=args.size, fill=True)
    _, labels, masks = planted_images(per, args.size, fill=True)
    shares = {p: float(masks[labels == k].sum() / masks.numel()) for k, p in enumerate(PATTERNS)}
    t = time.perf_counter()
    run = open_run(index(planted / "images" / "labels.csv", tmp / "run", model=model, layers=args.layer,
                         size=args.size, top_k=8, workers=0, progress=False))
    rows = dissect(run, planted / "masks", list(PATTERNS), model=model)
    seconds = time.perf_counter() - t
    units = [u for u in range(run.channels(args.layer))
             if [e.path.split("/")[-2] for e in run.top_examples(args.layer, u, 2)] == ["stripes", "stripes"]]
    named = sum(rows[u]["label"] == "stripes" for u in units)
    four = [u for u in units if all(e.path.split("/")[-2] == "stripes" for e in run.top_examples(args.layer, u, 4))]
    other = sum(r["label"] == "stripes" and u not in units for u, r in enumerate(rows))
    print(f"# Network Dissection (top 0.5 %, IoU >= 0.04; {machine()}): {len(run.paths)} frame-filling images "
          f"({args.dissect}), index + dissection {seconds:.1f} s")
    print(f"units whose two top images are stripes labelled stripes: {named} of {len(units)} (four top images: "
          f"{sum(rows[u]['label'] == 'stripes' for u in four)} of {len(four)}); other units labelled "
          f"stripes: {other}; units labelled: {sum(bool(r['label']) for r in rows)} of {len(rows)}")
    print("IoU bound 0.005 / share: " + ", ".join(f"{p} {0.005 / v:.3f} (share {v:.3f})" for p, v in shares.items() if v))


def scale(args, run: Path) -> None:
    """The ``--samples`` runs: each in its own process, on a memory-mapped copy of ``run``."""
    for n in [int(v) for v in args.samples.split(",") if v]:
        copy = scaled_copy(run, args.layer, n, run.parent / f"scaled-{n}")
        out = subprocess.run([sys.executable, __file__, "--child", str(copy), "--layer", args.layer, "--method",
                              args.method, "--grid", str(args.grid)], capture_output=True, text=True, check=True)
        found = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"# {found['n']} samples, memory-mapped ({found['cells']} cells of a {args.grid} x {args.grid} grid)")
        for name, seconds in found["times"].items():
            print(f"{name:32s} {seconds:8.2f} s   {seconds * 1e4 / found['n']:.2f} s per 10^4 samples")
        print(f"peak resident memory {found['peak_mb']:.0f} MB ({found['before_mb']:.0f} MB before gather, after a "
              f"warm-up layout: "
              f"+{found['peak_mb'] - found['before_mb']:.0f} MB); peak traced allocations {found['traced_mb']:.0f} MB")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--per-pattern", default="64", help="images per pattern: one count, or one per pattern")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--layer", default="_blocks.5")
    p.add_argument("--per-image", type=int, default=4, help="activation samples per image of the index")
    p.add_argument("--grid", type=int, default=8)
    p.add_argument("--icon", type=int, default=64)
    p.add_argument("--steps", type=int, default=128)
    p.add_argument("--samples", default="10000,100000", help="sample counts of the scale runs ('' for none)")
    p.add_argument("--method", default="umap", help="layout of the scale runs")
    p.add_argument("--dissect", default="8,8,8,104", help="Network Dissection's planted set ('' for none)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child is not None:
        print(json.dumps(scaled_child(args.child, args.layer, args.method, args.grid)))
        return
    run = stages(args)
    if args.dissect:
        dissection(args)
    scale(args, run)


if __name__ == "__main__":
    main()
