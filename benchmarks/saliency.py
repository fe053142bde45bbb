"""Seconds per image of each saliency method beside its peers (Captum and pytorch-grad-cam), both
measured in this run on the same input: the embedded model, real photos, 224 px, batch 1 and 16.

    python benchmarks/saliency.py [--size 224] [--batches 1,16] [--methods all] [--layers _bn1,_conv_head]
                                  [--threads 2] [--repeat 3] [--heavy]

The ratio column is synthviz / peer (below 1: synthviz is faster); a method with two peers (Grad-CAM:
Captum's LayerGradCam and pytorch-grad-cam's GradCAM) gets a row for each. Every call goes through
the public API (``synthviz.attribution.attribute``) with the class given, as the peers get it. The
same numbers (steps, samples, windows) on both sides. The CAM family runs at each of ``--layers``:
``_bn1`` (the last batch norm's output) and ``_conv_head`` (the convolution it follows, which
synthviz reads from its fused twin through the batch norm's affine map). Score-CAM (one forward per
channel: 1280 at the last stage) runs only with ``--heavy``; DeepLIFT, LRP, RISE, LIME and
KernelSHAP are timed by ``benchmarks/saliency_extra.py``; Score-CAM and Ablation-CAM run at batch 1
only (their peers take about a minute per image). Shapes are warmed up first; then the calls of
synthviz and its peer alternate, --repeat times each, and each side's best is kept (a busy machine
slows both alike). ``--clock cpu --threads 1`` times the process's CPU time instead of the wall
clock: what a machine shared with other jobs measures best.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time
import warnings

import torch
from torch import nn

from synthviz.attribution import attribute, method_info, method_names
from synthviz.io import resize, to_tensor
from synthviz.models import load_model
from machine import machine

PHOTOS = ["chelsea", "coffee", "astronaut", "rocket", "cat", "coins", "camera", "page"]
BATCH_ONE_ONLY = {"scorecam", "ablationcam"}
HEAVY = {"scorecam"}
# timed beside Captum / zennit by benchmarks/saliency_extra.py (their peers need their own set-up)
EXTRA = {"deeplift", "lrp", "rise", "lime", "kernelshap"}
# the same numbers on both sides
OPTIONS = {"smoothgrad": dict(samples=25, noise=0.15), "integrated_gradients": dict(steps=64),
           "occlusion": dict(window=32, stride=16, value=0.5)}


def photos(n: int, size: int) -> torch.Tensor:
    import skimage.data

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # greyscale photos converted to RGB
        imgs = [resize(to_tensor(getattr(skimage.data, name)()), (size, size)) for name in PHOTOS]
    imgs = torch.cat(imgs + [im.flip(-1) for im in imgs])  # 16 distinct images
    return imgs[torch.arange(n) % len(imgs)]


class Normalized(nn.Module):
    """What a Captum / pytorch-grad-cam user runs: normalisation + the network, input in [0, 1]."""

    def __init__(self, model):
        super().__init__()
        self.net, self.mean, self.std = model.net, model.mean, model.std

    def forward(self, x):
        return self.net((x - self.mean) / self.std)


def peers(name: str, model, layer_name: str = "_bn1") -> list[tuple]:
    """[(function (x, target index) -> maps running a peer library's equivalent, its name)]: Captum's
    and pytorch-grad-cam's, those installed that have one; [(None, why)] when none."""
    found = [p for p in (captum_peer(name, model, layer_name), grad_cam_peer(name, model, layer_name)) if p]
    if found:
        return found
    return [(None, "no peer" if _installed("captum") and _installed("pytorch_grad_cam") else "no peer installed")]


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def captum_peer(name: str, model, layer_name: str):
    """(Captum's equivalent of ``name``, "Captum") or None."""
    try:
        import captum.attr as ca
    except ImportError:
        return None
    wrapped, layer = Normalized(model), model.net.get_submodule(layer_name)

    def grad_input(x):
        return x.clone().requires_grad_(True)

    captum = {
        "gradient": lambda x, t: ca.Saliency(wrapped).attribute(grad_input(x), target=t),
        "grad_x_input": lambda x, t: ca.InputXGradient(wrapped).attribute(grad_input(x), target=t),
        "smoothgrad": lambda x, t: ca.NoiseTunnel(ca.Saliency(wrapped)).attribute(
            grad_input(x), nt_type="smoothgrad", nt_samples=25, nt_samples_batch_size=16,
            stdevs=0.15 * float(x.max() - x.min()), target=t),
        "integrated_gradients": lambda x, t: ca.IntegratedGradients(wrapped).attribute(
            x, target=t, n_steps=64, method="gausslegendre", internal_batch_size=16),
        "guided_backprop": lambda x, t: ca.GuidedBackprop(wrapped).attribute(grad_input(x), target=t),
        "deconvnet": lambda x, t: ca.Deconvolution(wrapped).attribute(grad_input(x), target=t),
        "gradcam": lambda x, t: ca.LayerAttribution.interpolate(
            ca.LayerGradCam(wrapped, layer).attribute(grad_input(x), target=t), x.shape[-2:], "bilinear"),
        "guided_gradcam": lambda x, t: ca.GuidedGradCam(wrapped, layer).attribute(grad_input(x), target=t),
        "occlusion": lambda x, t: ca.Occlusion(wrapped).attribute(
            x, target=t, sliding_window_shapes=(3, 32, 32), strides=(3, 16, 16), baselines=0.5,
            perturbations_per_eval=16),
    }
    return (captum[name], "Captum") if name in captum else None


def grad_cam_peer(name: str, model, layer_name: str):
    """(pytorch-grad-cam's equivalent of ``name``, "pytorch-grad-cam") or None."""
    try:
        import pytorch_grad_cam as pgc
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    except ImportError:
        return None
    wrapped, layer = Normalized(model), model.net.get_submodule(layer_name)
    grad_cams = {"gradcam": "GradCAM", "gradcam_plusplus": "GradCAMPlusPlus", "xgradcam": "XGradCAM",
                 "hirescam": "HiResCAM", "layercam": "LayerCAM", "eigencam": "EigenCAM", "scorecam": "ScoreCAM",
                 "ablationcam": "AblationCAM", "fullgrad": "FullGrad"}
    if name in grad_cams:
        cls = getattr(pgc, grad_cams[name])

        def run(x, t):
            # made for the call and released after it, as in `with GradCAM(...) as cam:`; a live
            # object's hooks stay on the network and slow down the forwards of synthviz's turn too
            # (its fused twin steps aside for hooks it did not put there)
            with contextlib.redirect_stdout(io.StringIO()):  # FullGrad prints a warning about target_layers
                cam = cls(model=wrapped, target_layers=[] if name == "fullgrad" else [layer])
            with cam, contextlib.redirect_stderr(io.StringIO()):  # tqdm bars
                return cam(input_tensor=x.clone().requires_grad_(True),
                           targets=[ClassifierOutputTarget(t)] * len(x))

        return run, "pytorch-grad-cam"
    return None


CLOCK = time.perf_counter  # --clock cpu: time.process_time


def race(fns, repeat: int) -> list[float]:
    """The best time of each of ``fns`` over ``repeat`` rounds, calling them in turn each round."""
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            start = CLOCK()
            fn()
            best[i] = min(best[i], CLOCK() - start)
    return best


def time_row(model, name: str, layer: str | None, b: int, size: int, repeat: int) -> None:
    """Print one row per peer: synthviz's and the peer's seconds per image on a batch of ``b``."""
    x, target = photos(b, size), 285
    opts = dict(OPTIONS.get(name, {}), **({"layer": layer} if layer else {}))
    ours = lambda: attribute(model, x, name, target, **opts)  # noqa: E731
    for _ in range(2):  # warm-up: oneDNN builds kernels per shape; the first call also builds the fused twin
        ours()
    label = f"{name}@{layer}" if layer else name
    for fn, who in peers(name, model, layer or "_bn1"):
        if fn is None:
            mine = race([ours], repeat)[0] / b
            print(f"{label:30s}{b:6d}{mine:10.4f}{'-':>10s}{'-':>8s}  ({who})", flush=True)
            continue
        theirs = lambda: fn(x, target)  # noqa: E731
        if name not in BATCH_ONE_ONLY:
            theirs()
        mine, other = (t / b for t in race([ours, theirs], 1 if name in BATCH_ONE_ONLY else repeat))
        print(f"{label:30s}{b:6d}{mine:10.4f}{other:10.4f}{mine / other:8.2f}  {who}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--methods", default="all")
    parser.add_argument("--layers", default="_bn1,_conv_head", help="the CAM family's layers")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--heavy", action="store_true", help="also Score-CAM (one forward per channel)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="cpu: the process's CPU time, steadier on a shared machine (with --threads 1)")
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    torch.set_num_threads(args.threads)
    model = load_model("efficientnet_lite0", device="cpu")
    batches = [int(b) for b in args.batches.split(",")]
    names = [n for n in method_names(args.methods)
             if args.methods != "all" or ((args.heavy or n not in HEAVY) and n not in EXTRA)]
    print(f"efficientnet_lite0 at {args.size} px, CPU, {torch.get_num_threads()} threads; seconds per image "
          f"(best of {args.repeat}, calls alternating, {args.clock} clock); ratio = synthviz / peer, "
          "measured in this run")
    print(f"{'method@layer':30s}{'batch':>6s}{'synthviz':>10s}{'peer':>10s}{'ratio':>8s}  peer")
    for name in names:
        layers = args.layers.split(",") if method_info(name).needs_layer else [None]
        for layer in layers:
            for b in batches:
                if b == 1 or name not in BATCH_ONE_ONLY:
                    time_row(model, name, layer, b, args.size, args.repeat)


if __name__ == "__main__":
    main()
    print(machine())  # the machine the figures above were measured on
