"""Time per image of each saliency method at batch 1 and batch 16 on the embedded model (224 px).

    python benchmarks/saliency.py [--size 224] [--batches 1,16] [--methods all] [--device cpu] [--threads 2]

Real photos from scikit-image (resized to size x size), each method with its default options
(SmoothGrad 25 samples, IG 64 steps, occlusion window 32 / stride 16). Every shape is warmed up
first (oneDNN / cuDNN build their kernels per input shape); the figure is the best of --repeat runs.
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch

from synthviz.io import resize, to_tensor
from synthviz.models import load_model
from synthviz.techniques.saliency import attribute, method_names

PHOTOS = ["chelsea", "coffee", "astronaut", "rocket", "cat", "coins", "camera", "page"]


def photos(n: int, size: int) -> torch.Tensor:
    import skimage.data

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # greyscale photos converted to RGB
        imgs = [resize(to_tensor(getattr(skimage.data, name)()), (size, size)) for name in PHOTOS]
    imgs = torch.cat(imgs + [im.flip(-1) for im in imgs])  # 16 distinct images
    return imgs[torch.arange(n) % len(imgs)]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--methods", default="all")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model("efficientnet_lite0", device=args.device)
    device = model.device
    batches = [int(b) for b in args.batches.split(",")]
    names = method_names(args.methods)
    print(f"efficientnet_lite0 at {args.size} px on {device} ({torch.get_num_threads()} threads); "
          f"seconds per image, best of {args.repeat}")
    print(f"{'method':22s}" + "".join(f"{'batch ' + str(b):>12s}" for b in batches) + f"{'speed-up':>10s}")
    for name in names:
        per_image = []
        for b in batches:
            x = photos(b, args.size).to(device)
            attribute(model, x[:1], "gradient", 285)  # warm-up of this shape family
            attribute(model, x, "gradient", 285)
            best = float("inf")
            for _ in range(args.repeat):
                sync(device)
                start = time.perf_counter()
                att = attribute(model, x, name)
                sync(device)
                best = min(best, time.perf_counter() - start)
            per_image.append(best / b)
            extra = att.info.get("relative_gap")
        gap = f"   IG completeness gap (mean |gap|/|Δf|): {100 * sum(extra) / len(extra):.2f}%" if extra else ""
        speedup = per_image[0] / per_image[-1] if len(per_image) > 1 else 1.0
        print(f"{name:22s}" + "".join(f"{t:12.4f}" for t in per_image) + f"{speedup:9.2f}x" + gap, flush=True)


if __name__ == "__main__":
    main()
