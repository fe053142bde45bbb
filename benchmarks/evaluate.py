"""Which explanation to trust: the table of the README, measured in one run.

    python benchmarks/evaluate.py [--photos chelsea,coffee,astronaut] [--size 96] [--threads 1]

1. **Synthetic benchmark with known answers** (:mod:`synthviz.evaluation.synthetic`): a tiny CNN trained
   in seconds on images whose class is decided by one striped patch (a checkerboard distractor
   elsewhere), and its twin trained on shuffled labels. Per method: pointing-game accuracy against
   the known patch on 64 held-out images, deletion/insertion AUC, and the Spearman rank correlation
   of each map with the same method's map on the shuffled-label twin (low = the map depends on what
   the model learned).
2. **Embedded model** (EfficientNet-Lite0, real weights) on a few scikit-image photos at ``--size``:
   deletion/insertion, ROAD MoRF/LeRF, similarity with every layer randomized, input invariance and
   the time per image, through :func:`synthviz.evaluation.evaluate_methods`.

Prints two Markdown tables. Figures are ratios measured in one run on the machine it runs on.
"""

from __future__ import annotations

import argparse
import math
import time
import warnings

import torch

from synthviz.evaluation import (
    auc,
    deletion_curve,
    evaluate_methods,
    insertion_curve,
    pointing_game,
)
from synthviz.evaluation._maps import relevance, spearman
from synthviz.evaluation.invariance import input_invariance
from synthviz.evaluation.synthetic import benchmark
from synthviz.io import resize, to_tensor
from synthviz.models import load_model
from machine import machine

METHODS = ["gradient", "smoothgrad", "grad_x_input", "integrated_gradients", "guided_backprop", "gradcam",
           "occlusion"]
OPTIONS = {"samples": 16, "steps": 32, "window": 8, "stride": 4}  # occlusion windows sized for 32-px images


def fmt(v, spec=".2f") -> str:
    return "–" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


def synthetic_table(n_test: int = 64) -> tuple[list[dict], dict]:
    start = time.perf_counter()
    bench = benchmark(n_train=1024, epochs=5)
    trained = time.perf_counter() - start
    model, twin = bench["model"], bench["shuffled"]
    x, masks = bench["images"][:n_test], bench["masks"][:n_test]
    with torch.no_grad():
        t = model(x).argmax(1)
    rows = []
    for method in METHODS + ["random"]:
        if method == "random":
            maps = torch.rand(len(x), 1, *x.shape[-2:], generator=torch.Generator().manual_seed(0))
            other = torch.rand(len(x), 1, *x.shape[-2:], generator=torch.Generator().manual_seed(1))
        else:
            maps = relevance(model, x, method, t, **OPTIONS)
            other = relevance(twin, x, method, t, **OPTIONS)
        rows.append({"method": method, "pointing": float(pointing_game(maps, masks).float().mean()),
                     "deletion": float(auc(deletion_curve(model, x, maps, t)).mean()),
                     "insertion": float(auc(insertion_curve(model, x, maps, t)).mean()),
                     "shuffled": sum(spearman(maps[i], other[i]) for i in range(len(x))) / len(x),
                     "invariant": None if method == "random" else
                     bool(input_invariance(model, x[:8], method, t[:8], **OPTIONS)["invariant"].all())})
    return rows, {"accuracy": bench["accuracy"], "shuffled_accuracy": bench["shuffled_accuracy"], "seconds": trained}


def photos(names: list[str], size: int) -> dict:
    import skimage.data

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {n: resize(to_tensor(getattr(skimage.data, n)()), (size, size)) for n in names}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", default="chelsea,coffee,astronaut")
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    rows, facts = synthetic_table()
    print(f"Synthetic benchmark: tiny CNN and its shuffled-label twin trained in {facts['seconds']:.0f} s "
          f"(test accuracy {facts['accuracy']:.0%}; twin {facts['shuffled_accuracy']:.0%}), 64 held-out 32-px images.\n")
    print("| method | pointing game ↑ | deletion AUC ↓ | insertion AUC ↑ | rank corr. with shuffled-label model ↓ | input invariant |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        inv = "–" if r["invariant"] is None else ("yes" if r["invariant"] else "**no**")
        print(f"| {r['method']} | {r['pointing']:.0%} | {r['deletion']:.3f} | {r['insertion']:.3f} | "
              f"{r['shuffled']:+.2f} | {inv} |")

    model = load_model("efficientnet_lite0", device="cpu")
    ev = evaluate_methods(model, photos(args.photos.split(","), args.size), METHODS,
                          checks=("road", "randomization", "invariance"), samples=16, steps=32)
    print(f"\nEmbedded EfficientNet-Lite0, photos {args.photos} at {args.size} px, mean over the photos "
          f"({args.threads} thread(s); seconds per image are ratios of one run).\n")
    print("| method | deletion AUC ↓ | insertion AUC ↑ | ROAD MoRF ↓ | ROAD LeRF ↑ | rank corr., all layers randomized ↓ "
          "| input invariance change ↓ | s / image | notes |")
    print("|---|---|---|---|---|---|---|---|---|")
    for s in ev.summary():
        print(f"| {s['method']} | {fmt(s['deletion_auc'], '.3f')} | {fmt(s['insertion_auc'], '.3f')} | "
              f"{fmt(s['road_morf'], '.3f')} | {fmt(s['road_lerf'], '.3f')} | {fmt(s['random_all_spearman'], '+.2f')} | "
              f"{fmt(s['invariance_change'], '.2g')} | {fmt(s['seconds'], '.2f')} | {s['notes']} |")


if __name__ == "__main__":
    main()
    print(machine())  # the machine the figures above were measured on
