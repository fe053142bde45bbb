"""Time per call of the transformer explanations (and Grad-CAM, for scale) on vit_b_16 at 224 px,
random weights (no pretrained ViT is needed to time it); plus one MaCo step of the recipe as
``--recipe maco`` runs it: one crop of the default 448 px canvas, and horama's 6 crops of a
1280 px canvas (``--canvas 1280 --crops 6``), with the full render's time at 1000 steps.

    python benchmarks/vit.py [--device cpu] [--threads 2] [--repeat 3] [--batch 1] [--maco-only]

Each figure is the best of --repeat calls after one warm-up call. The head of a random
torchvision ViT is all zeros, so it is re-initialised (else Chefer's gradients are zero).
"""

from __future__ import annotations

import argparse

import torch

import synthviz
from synthviz import objectives as obj
from synthviz.maco import canvas_size
from synthviz.models import load_model
from synthviz.recipes import maco_views
from machine import best_of, machine


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--maco-only", action="store_true", help="time only the MaCo steps")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model("vit_b_16", weights="random", device=args.device)
    torch.manual_seed(0)
    torch.nn.init.normal_(model.net.heads.head.weight, std=0.02)
    x = torch.rand(args.batch, 3, 224, 224, device=model.device)
    print(f"vit_b_16, random weights, {args.batch} x 224 x 224, device {model.device}, "
          f"{args.threads} threads; best of {args.repeat}")
    for method, opts in [] if args.maco_only else [("rollout", {}), ("chefer", {}), ("gradcam", {})]:
        seconds = best_of(lambda: synthviz.attribute(model, x, method, target=0, **opts), args.repeat, warm=True)
        print(f"  {method:8s} {seconds:7.3f} s per call")
    for canvas, crops in ((None, 1), (1280, 6)):  # the technique's default, then horama's recipe
        side = canvas_size((224, 224), canvas)
        step = best_of(lambda: synthviz.render(model, obj.channel("encoder.layers.encoder_layer_6", 5),
                                               synthviz.make_param("maco", size=side),
                                               transforms=maco_views((224, 224), side, crops), steps=1, seed=0),
                       args.repeat, warm=True)
        print(f"  MaCo step ({side[0]} px canvas, {crops} crop{'s' if crops > 1 else ''}) {step:.3f} s; "
              f"256 steps ≈ {256 * step / 60:.0f} min, 1000 steps ≈ {1000 * step / 60:.0f} min")


if __name__ == "__main__":
    main()
    print(machine())  # the machine the figures above were measured on
