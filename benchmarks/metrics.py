"""Each registered metric that needs more than one forward pass, timed beside Quantus 0.6 in one run.

    python benchmarks/metrics.py [--size 64] [--images 4] [--repeat 2] [--threads 1] [--only pixel_flipping,mprt]

The embedded EfficientNet-Lite0 on a few scikit-image photos; the same arguments on both sides
(Quantus's sample counts lowered alike so the run takes minutes), the same gradient maps, and the
gradient as the explanation that robustness and randomisation metrics recompute (synthviz's
batched ``attribute`` against a function computing the same gradient for Quantus). The two are
interleaved (synthviz, Quantus, synthviz, Quantus...) so a burst of load elsewhere hits both, and
the best of ``--repeat`` is kept. Prints a Markdown table: seconds each and the ratio synthviz ÷
Quantus (goal ≤ 0.5), then the machine and its load average before and after.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from synthviz.evaluation import score
from synthviz.evaluation.metrics import metric_info
from synthviz.io import resize, to_tensor
from synthviz.models import load_model

from saliency import Normalized  # the same wrapper the attribution benchmark gives Captum and pytorch-grad-cam
from machine import machine

PHOTOS = ["chelsea", "coffee", "astronaut", "rocket", "cat", "coins", "camera", "page"]
# metric -> (Quantus class, the options given to both sides); sample counts lowered alike
CASES = {
    "faithfulness_correlation": ("FaithfulnessCorrelation", {"nr_runs": 20, "subset_size": 224}),
    "faithfulness_estimate": ("FaithfulnessEstimate", {"features_in_step": 128}),
    "monotonicity": ("Monotonicity", {"features_in_step": 128}),
    "monotonicity_correlation": ("MonotonicityCorrelation", {"nr_samples": 4, "features_in_step": 256}),
    "pixel_flipping": ("PixelFlipping", {"features_in_step": 128}),
    "region_perturbation": ("RegionPerturbation", {"patch_size": 8, "regions_evaluation": 16}),
    "selectivity": ("Selectivity", {"patch_size": 16}),
    "sensitivity_n": ("SensitivityN", {"features_in_step": 256, "nr_samples": 4, "n_max_percentage": 0.5}),
    "completeness": ("Completeness", {}),
    "non_sensitivity": ("NonSensitivity", {"eps": 1e-3}),
    "max_sensitivity": ("MaxSensitivity", {"nr_samples": 8}),
    "avg_sensitivity": ("AvgSensitivity", {"nr_samples": 8}),
    "local_lipschitz_estimate": ("LocalLipschitzEstimate", {"nr_samples": 8}),
    "continuity": ("Continuity", {"nr_steps": 8}),
    "relative_input_stability": ("RelativeInputStability", {"nr_samples": 8}),
    "relative_output_stability": ("RelativeOutputStability", {"nr_samples": 8}),
    "relative_representation_stability": ("RelativeRepresentationStability", {"nr_samples": 8}),
    "mprt": ("MPRT", {}),
    "smooth_mprt": ("SmoothMPRT", {"nr_samples": 2}),
    "efficient_mprt": ("EfficientMPRT", {}),
    "random_logit": ("RandomLogit", {"num_classes": 1000}),
    "input_invariance": ("InputInvariance", {}),
    "irof": ("IROF", {}),
    "road": ("ROAD", {"percentages": [10, 30, 50, 70, 90]}),
}
# Quantus 0.6's NonSensitivity fails with features_in_step > 1: one feature a step, on smaller images
SIZE = {"non_sensitivity": 32}
# Quantus's SmoothMPRT explains with quantus.explain whatever explain_func is given: name the method
QUANTUS_CALL = {"smooth_mprt": {"explain_func_kwargs": {"method": "Gradient"}}}
# synthviz's MPRTs return the last step's correlation: Quantus asked for the same
QUANTUS_INIT = {"mprt": {"return_last_correlation": True}, "smooth_mprt": {"return_last_correlation": True}}
# synthviz-only options, timed as an extra row beside the same Quantus call: the row's name -> (metric, options)
VARIANTS = {"efficient_mprt, maps given": ("efficient_mprt", {"original": "maps"})}  # what `evaluate` runs
# the same name, not the same computation: timed for synthviz alone
NOT_COMPARABLE = {"sensitivity_n": "not comparable: Quantus 0.6 correlates across the images (one subset per "
                                   "image and n); synthviz over nr_samples subsets of each image, as documented"}


def photos(n: int, size: int) -> torch.Tensor:
    import skimage.data

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # greyscale photos converted to RGB
        return torch.cat([resize(to_tensor(getattr(skimage.data, name)()), (size, size)) for name in PHOTOS[:n]])


def gradient_map(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """|∂ logit_y / ∂x|, max over colour: synthviz's ``gradient`` map (B, 1, H, W)."""
    x = x.detach().float().clone().requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(net(x).gather(1, y.long().view(-1, 1)).sum(), x)
    return g.abs().amax(1, keepdim=True).detach()


def quantus_explain(model, inputs, targets, **kwargs) -> np.ndarray:
    return gradient_map(model, torch.as_tensor(inputs), torch.as_tensor(targets)).numpy()


def run_ours(name: str, model, x, y, a, kw: dict) -> float:
    extra = {"explain": "gradient"} if "explain" in metric_info(name).needs else {}
    start = time.perf_counter()
    score(model, x, a, y, metric=name, **kw, **extra)
    return time.perf_counter() - start


def run_quantus(name: str, net, x, y, a, kw: dict) -> float:
    import quantus

    cls = getattr(quantus, CASES[name][0])
    options = dict(kw, disable_warnings=True, display_progressbar=False, **QUANTUS_INIT.get(name, {}))
    if name in ("faithfulness_correlation", "monotonicity_correlation", "road"):
        options["return_aggregate"] = False
    metric = cls(**options)
    extra = {"explain_func": quantus_explain} if "explain" in metric_info(name).needs else {}
    start = time.perf_counter()
    metric(model=net, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy(), device="cpu", **extra,
           **QUANTUS_CALL.get(name, {}))
    return time.perf_counter() - start


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"


def time_one(name: str, model, net, x, y, a, repeat: int, ours_kw: dict | None = None) -> tuple[float, float | str]:
    """Best-of-``repeat`` seconds (synthviz with ``ours_kw`` added, Quantus), interleaved; Quantus's
    failure in words."""
    kw = CASES[name][1]
    if name in SIZE:
        x = resize(x, (SIZE[name], SIZE[name]))
        a = gradient_map(net, x, y)
    ours, theirs = [], []
    for _ in range(repeat):
        ours.append(run_ours(name, model, x, y, a, {**kw, **(ours_kw or {})}))
        if name in NOT_COMPARABLE:
            continue
        try:
            theirs.append(run_quantus(name, net, x, y, a, kw))
        except Exception as exc:  # noqa: BLE001  (a peer's bug is reported, not fatal)
            return min(ours), f"Quantus fails: {type(exc).__name__}: {str(exc).splitlines()[0][:70]}"
    return min(ours), min(theirs) if theirs else NOT_COMPARABLE[name]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", default="", help="comma list of metrics (default: all of the table)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    np.trapz = getattr(np, "trapz", None) or np.trapezoid  # Quantus 0.6 calls np.trapz (gone in numpy 2.4)
    warnings.filterwarnings("ignore")
    model = load_model("efficientnet_lite0", device="cpu")
    net = Normalized(model).eval()
    x = photos(args.images, args.size)
    with torch.no_grad():
        y = net(x).argmax(1)
    a = gradient_map(net, x, y)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(CASES)
    for _ in range(2):  # warm-up: the first passes of a shape build their kernels, on both sides alike
        gradient_map(net, x, y), gradient_map(model.net, (x - model.mean) / model.std, y)
    before = load()
    print("| metric | synthviz s | Quantus s | synthviz ÷ Quantus |\n|---|---|---|---|")
    rows = [(n, n, {}) for n in names] + [(row, m, kw) for row, (m, kw) in VARIANTS.items() if m in names]
    for row, name, ours_kw in rows:
        ours, theirs = time_one(name, model, net, x, y, a, args.repeat, ours_kw)
        if isinstance(theirs, str):
            print(f"| {row} | {ours:.2f} | – | {theirs} |", flush=True)
        else:
            print(f"| {row} | {ours:.2f} | {theirs:.2f} | {ours / theirs:.2f} |", flush=True)
    print(f"\nefficientnet_lite0, {args.images} photos at {args.size} px, best of {args.repeat} interleaved runs, "
          f"{machine()}; "
          f"load average {before} before, {load()} after")


if __name__ == "__main__":
    main()
