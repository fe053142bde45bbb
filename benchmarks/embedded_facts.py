"""The single-run figures the README quotes in its prose about the embedded EfficientNet-Lite0.

    python benchmarks/embedded_facts.py [--part preprocessing|ig|fool|all]

* ``preprocessing``: which input normalisation the Lite weights were trained with. The batch norm
  after the stem keeps the statistics of its training inputs, so on real photos the stem's
  per-channel variance over the running variance (median) is near 1 under the right one. Printed
  for Lite0 (the embedded model) and the judges Lite1/Lite2, under the Lite preprocessing
  ((x·255 − 127) / 128) and under ImageNet's mean/std (the "Quality" section).
* ``ig``: integrated gradients' completeness gap on chelsea at 160×240, class 285, black
  baseline, at 32–256 steps (the "Saliency" section).
* ``fool``: the line ``synthviz fool cat.png --target goldfish`` prints on the full-size cat photo
  (the "Fooling images" section).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import warnings

import torch
from machine import machine

# the photos tests/test_models_tokens.py checks the embedded model's normalisation on
PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "camera", "coins", "brick", "grass", "gravel")


def photo(name: str) -> torch.Tensor:
    from synthviz.presets import resolve_value

    return resolve_value(f"skimage:{name}")


def preprocessing() -> None:
    import synthviz
    from synthviz.io import resize
    from synthviz.judge import load_judge
    from synthviz.models import IMAGENET_MEAN, IMAGENET_STD, LITE_MEAN, LITE_STD

    photos = torch.cat([resize(photo(n), (224, 224)) for n in PHOTOS])
    nets = {"lite0": synthviz.load_model("efficientnet_lite0").net,
            **{j: load_judge(j).model.net for j in ("lite1", "lite2")}}
    print(f"stem variance / BN running variance (median over channels), {len(PHOTOS)} scikit-image photos at 224 px")
    for name, net in nets.items():
        ratios = []
        for mean, std in ((LITE_MEAN, LITE_STD), (IMAGENET_MEAN, IMAGENET_STD)):
            x = (photos - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
            with torch.no_grad():
                stem = net._conv_stem(x)
            ratios.append(float((stem.var(dim=(0, 2, 3)) / net._bn0.running_var).median()))
        print(f"{name}: Lite preprocessing {ratios[0]:.2f}, ImageNet mean/std {ratios[1]:.2f}")


def integrated_gradients_gap() -> None:
    import synthviz
    from synthviz.attribution import attribute
    from synthviz.io import resize

    model = synthviz.load_model("efficientnet_lite0", device="cpu")
    x = resize(photo("chelsea"), (160, 240))
    print("integrated gradients, chelsea 160x240, class 285, black baseline: completeness gap / delta")
    for steps in (32, 64, 128, 256):
        att = attribute(model, x, "integrated_gradients", 285, steps=steps)
        gap, delta = att.info["completeness_gap"][0], att.info["delta"][0]
        print(f"{steps:4d} steps: {gap:+.3f} / {delta:.3f} = {abs(gap) / abs(delta):.1%}")


def fool_line() -> None:
    from synthviz.io import save_image

    with tempfile.TemporaryDirectory() as tmp:
        save_image(photo("chelsea"), os.path.join(tmp, "cat.png"))
        proc = subprocess.run([sys.executable, "-m", "synthviz", "fool", "cat.png", "--target", "goldfish",
                               "-o", "fooled.png"], cwd=tmp, capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines() or proc.stderr.strip().splitlines()[-1:]
    print("synthviz fool cat.png --target goldfish (chelsea, full size):", lines[-1] if lines else "(no output)")


PARTS = {"preprocessing": preprocessing, "ig": integrated_gradients_gap, "fool": fool_line}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=[*PARTS, "all"], default="all")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    print(machine())
    for name, part in PARTS.items():
        if args.part in (name, "all"):
            part()


if __name__ == "__main__":
    main()
