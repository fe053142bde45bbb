"""Which metrics can be trusted? Every registered metric scored on maps whose quality is known.

    python benchmarks/metrics_known_answer.py [--images 32] [--only pixel_flipping,sparseness]

The known answer is :mod:`synthviz.evaluation.synthetic`: a tiny CNN trained on images whose class
is decided by one striped patch (the evidence mask). For each test image, maps of known quality
are built by mixing the evidence mask with a smooth random map, ``a · evidence + (1 − a) · random``
for ``a`` in 0, 0.25, 0.5, 0.75, 1: the larger ``a``, the more the map points at what the model
really uses. A metric that can be trusted on this model ranks the maps in that order. Printed per
metric: the Spearman correlation of ``a`` with the metric (oriented so + means "ranks better maps
better"; 1 = always right, 0 = blind, − = backwards) over images, and how often the pure evidence
map beats the pure random one (a tie counts half). Metrics that explain again (robustness, randomisation, input
invariance) score the explanation *method*, not a given map: they are listed as not applicable.
Then the machine and the wall time.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from synthviz.evaluation import score
from synthviz.evaluation.metrics import metric_info, names
from synthviz.evaluation.synthetic import benchmark
from machine import machine

MIXES = (0.0, 0.25, 0.5, 0.75, 1.0)
# cheaper than Quantus's defaults at 32 px (options must divide the 1024 pixels), the same for every map
CHEAP = {"features_in_step": 16, "nr_runs": 20, "subset_size": 64, "nr_samples": 8, "patch_size": 4,
         "n_max_percentage": 0.5, "lower_bound": 0.02}


def smooth_random(n: int, size: int, cells: int = 4, seed: int = 0) -> torch.Tensor:
    """(n, 1, size, size) random maps at ``cells``² resolution, upsampled bilinearly: a map's own smoothness."""
    gen = torch.Generator().manual_seed(seed)
    return F.interpolate(torch.rand(n, 1, cells, cells, generator=gen), size=(size, size), mode="bilinear",
                         align_corners=False)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho with tied values sharing their mean rank; 0 when either side is constant."""
    from scipy.stats import rankdata

    ra, rb = rankdata(a), rankdata(b)
    if ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def agreement(model, images, labels, masks, metric: str, seed: int) -> tuple[float, float] | str:
    """(mean Spearman of mix vs metric over images, share of images where evidence beats random)."""
    info = metric_info(metric)
    if "explain" in info.needs:
        return "n/a: scores the method that explains again, not a given map"
    options = {k: v for k, v in CHEAP.items() if k in info.defaults}
    noise = smooth_random(len(images), images.shape[-1], seed=seed)
    evidence = masks.float()
    values = []
    for a in MIXES:
        maps = (a * evidence + (1 - a) * noise).expand(-1, 3, -1, -1).contiguous()
        v = score(model, images, maps, labels, metric=metric, masks=masks, **options).numpy()
        values.append(v if info.higher_is_better else -v)
    table = np.stack(values, 1)  # (images, mixes)
    if not np.isfinite(table).all():
        return "n/a: not finite on these maps"
    rho = np.mean([spearman(np.array(MIXES), row) for row in table])
    wins = (table[:, -1] > table[:, 0]) + 0.5 * (table[:, -1] == table[:, 0])  # a tie is half a win
    return float(rho), float(np.mean(wins))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=32)
    p.add_argument("--only", default="", help="comma list of metrics (default: every registered one)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    bench = benchmark()
    model = bench["model"]
    images, labels, masks = (bench[k][:args.images] for k in ("images", "labels", "masks"))
    print(f"tiny CNN on the synthetic benchmark: test accuracy {bench['accuracy']:.3f}, {len(images)} images at "
          f"{images.shape[-1]} px; maps a·evidence + (1 − a)·smooth random, a in {MIXES}\n")
    print("| metric | family | agreement (Spearman, + = right) | evidence beats random |")
    print("|---|---|---|---|")
    chosen = [m.strip() for m in args.only.split(",") if m.strip()] or names()
    for metric in chosen:
        info = metric_info(metric)
        try:
            got = agreement(model, images, labels, masks, metric, seed=0)
        except Exception as e:  # a metric that cannot run on this benchmark says why, the table goes on
            got = f"n/a: {type(e).__name__}: {' '.join(str(e).split())[:80]}"
        cells = f"{got[0]:+.2f} | {got[1]:.0%}" if isinstance(got, tuple) else f"{got} | "
        print(f"| {info.name} | {info.family} | {cells} |")
    print(f"\n{machine()}; "
          f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
