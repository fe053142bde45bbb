"""DeepLIFT, LRP, RISE, LIME and KernelSHAP: synthviz's time per image next to Captum's / zennit's,
measured in the same run on the same input (embedded model), with each side's completeness figure.

    python benchmarks/saliency_extra.py [--size 224] [--batches 1,16] [--samples 200] [--threads 2] [--methods deeplift,lrp] [--repeat 5]

synthviz is timed through the public call ``synthviz.attribute(model, x, method, target)``.
Peers: Captum ``DeepLift``, ``LRP``, ``Lime``, ``KernelShap`` (the same SLIC superpixels as
``feature_mask``, the same sample count, 16 images per forward); zennit ``EpsilonGammaBox`` with
its ``SequentialMergeBatchNorm`` canonizer. A peer that is not installed, or fails on the model, is
reported with its error. DeepLIFT and LRP run at every batch size; the sampling methods (whose cost
is samples × forwards per image at any batch size) at the first. Every shape is warmed up first;
DeepLIFT and LRP take the best of ``--repeat`` calls on each side (the sampling methods one call).
"""

from __future__ import annotations

import argparse
import warnings

import torch
from torch import nn

import synthviz
from synthviz.attribution.sampling import superpixels
from synthviz.io import resize, to_tensor
from synthviz.models import load_model
from machine import best_of, machine


def photos(n: int, size: int) -> torch.Tensor:
    import skimage.data

    names = ["chelsea", "coffee", "astronaut", "rocket"]
    imgs = torch.cat([resize(to_tensor(getattr(skimage.data, k)()), (size, size)) for k in names])
    imgs = torch.cat([imgs, imgs.flip(-1), imgs.flip(-2), imgs.flip(-1).flip(-2)])
    return imgs[torch.arange(n) % len(imgs)]


class Wrapped(nn.Module):
    """The Model as one nn.Module on [0, 1] images (what Captum and zennit are given)."""

    def __init__(self, model):
        super().__init__()
        self.net, self.model = model.net, model

    def forward(self, x):
        return self.net(self.model.normalize(x))


def timed(fn, warm: bool = False, repeat: int = 1):
    """(result, :func:`best_of` seconds) or (None, 'fails: ...') when the call raises."""
    results = []
    try:
        seconds = best_of(lambda: results.append(fn()), repeat, warm)
    except Exception as exc:  # a peer that cannot handle the model: say so
        return None, f"fails: {type(exc).__name__}: {str(exc).splitlines()[0][:70]}"
    return results[-1], seconds


def rel_gap(raw: torch.Tensor, delta: torch.Tensor) -> str:
    return f"summation gap {100 * ((raw.flatten(1).sum(1) - delta).abs() / delta.abs()).mean().item():.3g}%"


def peers(model, wrapped, x, t, out, delta, n):
    """{method: (label, callable, note_fn)} for the peers that import."""
    found = {}
    try:
        from captum.attr import LRP, DeepLift, KernelShap, Lime

        masks = None

        def feature_masks():
            nonlocal masks
            if masks is None:
                masks = torch.stack([superpixels(im, 50) for im in x])[:, None].expand(-1, 3, -1, -1)
            return masks

        def per_image(cls):
            return lambda: [cls(wrapped).attribute(x[i:i + 1], target=t[i:i + 1], n_samples=n,
                                                   feature_mask=feature_masks()[i:i + 1], perturbations_per_eval=16)
                            for i in range(len(x))]

        found["deeplift"] = [("captum DeepLift", lambda: DeepLift(wrapped).attribute(x.clone(), torch.zeros_like(x),
                                                                                      target=t),
                              lambda r: rel_gap(r.detach(), delta))]
        found["lrp"] = [("captum LRP", lambda: LRP(wrapped).attribute(x.clone(), target=t), lambda r: "")]
        found["lime"] = [("captum Lime", per_image(Lime), lambda r: f"{n} samples")]
        found["kernelshap"] = [("captum KernelShap", per_image(KernelShap), lambda r: f"{n} samples")]
    except ImportError as exc:
        print(f"captum not installed ({exc}): its rows are skipped")
    try:
        from zennit.attribution import Gradient
        from zennit.canonizers import SequentialMergeBatchNorm
        from zennit.composites import EpsilonGammaBox

        def zennit_run():
            comp = EpsilonGammaBox(low=0.0, high=1.0, canonizers=[SequentialMergeBatchNorm()])
            with Gradient(model=wrapped, composite=comp) as attributor:
                return attributor(x.clone().requires_grad_(True), torch.eye(out.shape[1])[t] * out.gather(1, t[:, None]))[1]

        found.setdefault("lrp", []).append(("zennit EpsilonGammaBox", zennit_run, lambda r: (
            f"Σ R / f(x) {(r.flatten(1).sum(1) / out.gather(1, t[:, None])[:, 0]).mean():.3g} "
            "(no residual canonizer for this model)")))
    except ImportError as exc:
        print(f"zennit not installed ({exc}): its rows are skipped")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--methods", default="deeplift,lrp,rise,lime,kernelshap")
    parser.add_argument("--repeat", type=int, default=5, help="best of N calls for DeepLIFT and LRP")
    args = parser.parse_args()
    wanted = args.methods.split(",")
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    model = load_model("efficientnet_lite0")
    wrapped = Wrapped(model).eval()
    n = args.samples
    print(f"efficientnet_lite0, {args.size} px, seconds per image, ratios measured in one run; {machine()}")
    print(f"{'method':24s}{'batch':>6s}{'s/image':>10s}{'ratio':>8s}   note")
    for bi, b in enumerate(int(v) for v in args.batches.split(",")):
        x = photos(b, args.size)
        with torch.no_grad():
            out = model(x)
            t = out.argmax(1)
            delta = out.gather(1, t[:, None])[:, 0] - model(torch.zeros_like(x)).gather(1, t[:, None])[:, 0]
        others = peers(model, wrapped, x, t, out, delta, n)
        methods = [m for m in ["deeplift", "lrp"] + (["rise", "lime", "kernelshap"] if bi == 0 else []) if m in wanted]
        for name in methods:
            opts = {"samples": n} if name in ("rise", "lime", "kernelshap") else {}
            fast = name in ("deeplift", "lrp")
            reps = args.repeat if fast else 1
            att, ours = timed(lambda: synthviz.attribute(model, x, name, t, **opts), warm=fast, repeat=reps)
            note = {"deeplift": lambda: rel_gap(att.raw, delta),
                    "lrp": lambda: f"Σ R / f(x) {(torch.tensor(att.info['relevance_sum']) / out.gather(1, t[:, None])[:, 0]).mean():.3g}"
                    }.get(name, lambda: f"{n} samples")() if att is not None else ours
            print(f"{name:24s}{b:6d}{ours / b if isinstance(ours, float) else float('nan'):10.3f}{'':8s}   {note}",
                  flush=True)
            for label, fn, describe in others.get(name, []):
                res, theirs = timed(fn, warm=fast, repeat=reps)
                if res is None:
                    print(f"  {label:22s}{b:6d}{'':10s}{'':8s}   {theirs}", flush=True)
                    continue
                ratio = ours / theirs if isinstance(ours, float) else float("nan")
                print(f"  {label:22s}{b:6d}{theirs / b:10.3f}{ratio:7.2f}x   {describe(res)}", flush=True)


if __name__ == "__main__":
    main()
