"""Style transfer judged by a network that did not make it (issue 30): 4 content photos × 4 style
images from scikit-image, each method's mean content kept, style gap and checkerboard under
EfficientNet-Lite2 (``synthviz.judge.style_scores``), and its time, in one run on this machine.

Methods (``--methods``, comma-separated):

* ``none``: ``synthviz.style`` with its raw features (``--smooth none``);
* ``softmax`` or ``softmax:T``: SWAG's softmax smoothing at temperature T (``--smooth softmax``);
  any ``style`` option may follow as ``:key=value`` (``softmax:10:tv_weight=20``, ``none:style_weight=6``);
* ``default``: ``synthviz.style`` as it is called with no option;
* ``0.4``: ``style``'s default before 0.5 (content at ``_blocks.8``, style weight 3, TV 200, no
  checkerboard penalty, no jitter, 200 steps); ``0.2``: the one before 0.3 (L-BFGS on pixels, TV 1);
* ``adain:NET.pt``: one pass of an AdaIN network (``synthviz.stylize(..., style_images=...)``).

    python benchmarks/style_quality.py                         # 4 x 4 at 256 px (slow on a CPU)
    python benchmarks/style_quality.py --pair                  # chelsea x immunohistochemistry only
    python benchmarks/style_quality.py --size 64 --steps 4 --contents 1 --styles 1   # does it run?
    python benchmarks/style_quality.py --pair --model resnet50 --methods none,softmax,softmax:10   # SWAG elsewhere
    python benchmarks/style_quality.py --pair --model timm:vit_small_patch16_224 --methods none,softmax

``--model`` paints with another network (the judge stays EfficientNet-Lite2); ``--weights random``
runs the mechanics where its pretrained weights cannot be downloaded (the numbers then mean nothing).

Needs ``pip install ".[judge,demo]"``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch
from machine import machine

CONTENTS = ("chelsea", "astronaut", "coffee", "rocket")
# style's earlier defaults, spelled out (the options that changed since)
BEFORE = {"0.4": dict(content_layer="_blocks.8", style_weight=3.0, tv_weight=200.0, checker_weight=0.0, jitter=0,
                      steps=200),
          "0.2": dict(content_layer="_blocks.8", style_weight=3.0, tv_weight=1.0, checker_weight=0.0,
                      optimizer="lbfgs", param="pixel", steps=200)}
STYLES = ("immunohistochemistry", "hubble_deep_field", "retina", "colorwheel")


def render(method: str, content: torch.Tensor, style: torch.Tensor, size: int, steps: int | None,
           scales: int | None, model="efficientnet_lite0") -> torch.Tensor:
    """One render (1, 3, H, W) of ``content`` in the style of ``style`` by ``method``."""
    import synthviz

    if method.startswith("adain:"):
        return synthviz.stylize(image=content, net=method.split(":", 1)[1], style_images=[style], size=size).images
    name, *rest = method.split(":")
    options = {} if name == "default" else dict(BEFORE[name]) if name in BEFORE else {"smooth": name}
    for part in rest:  # softmax:T, and any style option as key=value (softmax:10:tv_weight=20)
        key, _, value = part.rpartition("=")
        options[key or "temperature"] = value if key.endswith("layer") else int(value) if key == "jitter" else float(value)
    if steps is not None:  # --steps overrides a recipe's own
        options["steps"] = steps
    return synthviz.style(model, content, style, size=size, scales=scales, **options).images


def measure(methods, contents, styles, size, steps, scales, save: str = "", model="efficientnet_lite0") -> dict:
    """{method: [one dict of the judge's numbers and the seconds per pair]}."""
    from synthviz.judge import style_scores
    from synthviz.presets import resolve_value

    photos = {n: resolve_value(f"skimage:{n}") for n in (*contents, *styles)}
    rows: dict[str, list[dict]] = {}
    for method in methods:
        for c in contents:
            for s in styles:
                t = time.perf_counter()
                image = render(method, photos[c], photos[s], size, steps, scales, model)
                seconds = time.perf_counter() - t
                scores = style_scores(image, photos[c], photos[s])
                row = {"content_image": c, "style_image": s, "seconds": seconds, **scores}
                rows.setdefault(method, []).append(row)
                print(f"{method:>14} {c:>10} x {s:<22} content {row['content']:.3f}  style gap {row['style_gap']:.3f}  "
                      f"checkerboard {row['checkerboard']:.2f}  {seconds:.1f} s", flush=True)
                if save:
                    from synthviz.io import save_image

                    save_image(image, f"{save}/{method.replace(':', '-').replace('/', '_')}-{c}-{s}.png", overwrite=True)
    return rows


def print_table(rows: dict, size: int, steps, painter: str = "efficientnet_lite0") -> None:
    print(f"\nmean over {len(next(iter(rows.values())))} pair(s) at {size} px, steps {steps or 'default'}, painted "
          f"with {painter}; judge efficientnet_lite2; {machine()}")
    print("| method | content kept | style gap | checkerboard | s / image |")
    print("|---|---|---|---|---|")
    for method, rs in rows.items():
        mean = {k: sum(r[k] for r in rs) / len(rs) for k in ("content", "style_gap", "checkerboard", "seconds")}
        print(f"| {method} | {mean['content']:.3f} | {mean['style_gap']:.3f} | {mean['checkerboard']:.2f} | "
              f"{mean['seconds']:.1f} |")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="none,softmax")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=None, help="steps at the coarsest scale (default: style's)")
    ap.add_argument("--scales", type=int, default=None)
    ap.add_argument("--contents", type=int, default=len(CONTENTS), help="use the first N content photos")
    ap.add_argument("--styles", type=int, default=len(STYLES), help="use the first N style images")
    ap.add_argument("--pair", action="store_true", help="chelsea x immunohistochemistry only (the issue's pair)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--save", default="", help="folder to save the renders in")
    ap.add_argument("--model", default="efficientnet_lite0", help="the network that paints (any synthviz model name)")
    ap.add_argument("--weights", default="default", help="default, random (mechanics only) or a checkpoint's path")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    if args.threads:
        torch.set_num_threads(args.threads)
    contents, styles = (CONTENTS[:1], STYLES[:1]) if args.pair else (CONTENTS[: args.contents], STYLES[: args.styles])
    print(machine(), flush=True)
    import synthviz

    model = synthviz.load_model(args.model, args.weights)
    painter = args.model + (f" ({args.weights} weights)" if args.weights != "default" else "")
    rows = measure(args.methods.split(","), contents, styles, args.size, args.steps, args.scales, args.save, model)
    print_table(rows, args.size, args.steps, painter)


if __name__ == "__main__":
    main()
