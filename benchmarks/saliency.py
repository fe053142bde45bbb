"""Seconds per image of each saliency method beside its peer (Captum or pytorch-grad-cam), both
measured in this run on the same input: the embedded model, real photos, 224 px, batch 1 and 16.

    python benchmarks/saliency.py [--size 224] [--batches 1,16] [--methods all] [--threads 2] [--repeat 3] [--heavy]

The ratio column is synthviz / peer (below 1: synthviz is faster). Every call goes through the
public API (``synthviz.attribution.attribute``) with the class given, as the peers get it. The
same numbers (steps, samples, windows) on both sides. Score-CAM (one forward per channel: 1280 at
the last stage) runs only with ``--heavy``; DeepLIFT, LRP, RISE, LIME and KernelSHAP are timed by
``benchmarks/saliency_extra.py``; Score-CAM and Ablation-CAM run at batch 1 only (their
peers take about a minute per image). Shapes are warmed up first; the figure is the best of --repeat.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time
import warnings

import torch
from torch import nn

from synthviz.attribution import attribute, method_names
from synthviz.io import resize, to_tensor
from synthviz.models import load_model

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


def peer(name: str, model):
    """A function (x, target index) -> maps running the peer library's equivalent, and its name;
    None when the library (or an equivalent) is missing."""
    wrapped = Normalized(model)
    layer = model.net._bn1
    try:
        import captum.attr as ca
    except ImportError:
        ca = None
    try:
        import pytorch_grad_cam as pgc
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    except ImportError:
        pgc = None
    if ca is not None:
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
        if name in captum:
            return captum[name], "Captum"
    grad_cams = {"gradcam_plusplus": "GradCAMPlusPlus", "xgradcam": "XGradCAM", "hirescam": "HiResCAM",
                 "layercam": "LayerCAM", "eigencam": "EigenCAM", "scorecam": "ScoreCAM",
                 "ablationcam": "AblationCAM", "fullgrad": "FullGrad"}
    if pgc is not None and name in grad_cams:
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
    return None, "no peer installed" if (ca is None or pgc is None) else "no peer"


def best_of(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--methods", default="all")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--heavy", action="store_true", help="also Score-CAM (one forward per channel)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model("efficientnet_lite0", device="cpu")
    batches = [int(b) for b in args.batches.split(",")]
    names = [n for n in method_names(args.methods)
             if args.methods != "all" or ((args.heavy or n not in HEAVY) and n not in EXTRA)]
    print(f"efficientnet_lite0 at {args.size} px, CPU, {torch.get_num_threads()} threads; seconds per image "
          f"(best of {args.repeat}); ratio = synthviz / peer, measured in this run")
    print(f"{'method':22s}{'batch':>6s}{'synthviz':>10s}{'peer':>10s}{'ratio':>8s}  peer")
    for name in names:
        fn, who = peer(name, model)
        for b in batches:
            if b > 1 and name in BATCH_ONE_ONLY:
                continue
            x = photos(b, args.size)
            target = 285
            opts = OPTIONS.get(name, {})
            ours = lambda: attribute(model, x, name, target, **opts)  # noqa: E731
            ours()  # warm-up: oneDNN builds kernels per shape
            repeat = 1 if name in BATCH_ONE_ONLY else args.repeat
            mine = best_of(ours, repeat) / b
            if fn is None:
                print(f"{name:22s}{b:6d}{mine:10.4f}{'-':>10s}{'-':>8s}  ({who})", flush=True)
                continue
            theirs = lambda: fn(x, target)  # noqa: E731
            if name not in BATCH_ONE_ONLY:
                theirs()
            other = best_of(theirs, repeat) / b
            print(f"{name:22s}{b:6d}{mine:10.4f}{other:10.4f}{mine / other:8.2f}  {who}", flush=True)


if __name__ == "__main__":
    main()
