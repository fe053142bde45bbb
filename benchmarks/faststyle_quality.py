"""Does a style network keep the content as well as the optimised image (issue 30)? In one run:

* the optimised image's curve: ``synthviz.style``'s default on the issue's pair (chelsea in the style
  of immunohistochemistry, 256 px) at several style weights, each judged by EfficientNet-Lite2
  (``synthviz.judge.style_scores``: content kept, style gap, checkerboard);
* style networks trained for that style on crops of scikit-image's other photos (chelsea held out),
  one per recipe, their output on chelsea judged the same way, and the optimised image's content
  at the network's style gap (linear between the two nearest points of the curve): the goal is a
  network within 0.05 of it.

Recipes (``--recipes``, comma-separated): ``NAME`` (``train_style_net``'s defaults) or
``NAME:key=value:...`` with any ``train_style_net`` option (``content_weight``, ``style_weight``,
``tv_weight``, ``content_layer``, ``style_layers`` as ``a+b``, ``stat``, ``channels`` as
``32+64+128``, ``res_blocks``, ``size``, ``style_size``, ``steps``).

    python benchmarks/faststyle_quality.py --recipes base,cw2:content_weight=2 [--steps 600] [--threads 2]

Needs ``pip install ".[judge,demo]"``.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import torch

from faststyle import make_crops
from machine import machine

WEIGHTS = "0.25,0.5,1,1.5,3,6,15,40"  # style weights of the optimised curve (15: style's default)


def option(key: str, value: str):
    """One recipe option from its text: numbers, ``a+b`` lists, or a layer name."""
    if "+" in value:
        parts = value.split("+")
        return [int(p) for p in parts] if key == "channels" else parts
    if key in ("stat", "content_layer", "style_layers"):
        return value
    return int(value) if key in ("steps", "size", "style_size", "res_blocks", "batch_size") else float(value)


def recipe(text: str) -> tuple[str, dict]:
    name, *parts = text.split(":")
    return name, {k: option(k, v) for k, _, v in (p.partition("=") for p in parts)}


def curve(content: torch.Tensor, style: torch.Tensor, size: int, weights: list[float]) -> list[dict]:
    """The optimised image's (style weight, content, style gap, checkerboard, seconds), one per weight."""
    import synthviz
    from synthviz.judge import style_scores

    points, model = [], synthviz.load_model("efficientnet_lite0")  # loaded once: the seconds are the renders'
    for w in weights:
        t = time.perf_counter()
        image = synthviz.style(model, content, style, size=size, style_weight=w).images
        points.append({"style_weight": w, "seconds": time.perf_counter() - t, **style_scores(image, content, style)})
        print(f"style, style weight {w:g}: content {points[-1]['content']:.3f}  style gap {points[-1]['style_gap']:.3f}  "
              f"checkerboard {points[-1]['checkerboard']:.2f}  {points[-1]['seconds']:.1f} s", flush=True)
    return points


def content_at(points: list[dict], gap: float) -> float | None:
    """The curve's content at style gap ``gap`` (linear between its two nearest points; None outside)."""
    ordered = sorted(points, key=lambda p: p["style_gap"])
    for a, b in zip(ordered, ordered[1:]):
        if a["style_gap"] <= gap <= b["style_gap"]:
            f = (gap - a["style_gap"]) / max(b["style_gap"] - a["style_gap"], 1e-9)
            return a["content"] + f * (b["content"] - a["content"])
    return None


def main(argv=None) -> None:
    import synthviz
    from synthviz.faststyle.train import train_style_net
    from synthviz.io import resize
    from synthviz.judge import style_scores
    from synthviz.presets import resolve_value

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipes", default="base")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--train-size", type=int, default=128, help="training crops' side")
    ap.add_argument("--size", type=int, default=256, help="the judged output's longer side")
    ap.add_argument("--crops", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/faststyle-quality"))
    ap.add_argument("--curve", default=WEIGHTS, help="style weights of the optimised curve ('' for none)")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    print(machine(), flush=True)
    content = resize(resolve_value("skimage:chelsea"), args.size)
    style = resolve_value("skimage:immunohistochemistry")
    points = curve(content, style, args.size, [float(w) for w in args.curve.split(",") if w])
    crops = args.workdir / "crops"
    if not crops.is_dir():
        make_crops(crops, args.crops)  # astronaut, coffee, rocket: chelsea is held out
    rows = []
    for text in args.recipes.split(","):
        name, options = recipe(text)
        options = {"steps": args.steps, "size": args.train_size, **options}
        trained = train_style_net("efficientnet_lite0", [style], crops, out=args.workdir / f"{name}.pt",
                                  overwrite=True, sample_every=0, checkpoint_every=0, **options)
        t = time.perf_counter()
        image = synthviz.stylize(image=content, net=args.workdir / f"{name}.pt").images
        scores = {"recipe": text, "train_s": trained.info["seconds"], "pass_s": time.perf_counter() - t,
                  **style_scores(image, content, style)}
        rows.append(scores)
        synthviz.save_image(image, args.workdir / f"{name}.png", overwrite=True)
        print(f"network {text}: content {scores['content']:.3f}  style gap {scores['style_gap']:.3f}  "
              f"checkerboard {scores['checkerboard']:.2f}  (trained {scores['train_s']:.0f} s)", flush=True)
    print(f"\nchelsea x immunohistochemistry at {args.size} px, judge efficientnet_lite2; {machine()}")
    print("| network recipe | content kept | style gap | checkerboard | optimised content at that gap | difference |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        opt = content_at(points, r["style_gap"])
        diff = f"{r['content'] - opt:+.3f}" if opt is not None else "outside the curve"
        print(f"| {r['recipe']} | {r['content']:.3f} | {r['style_gap']:.3f} | {r['checkerboard']:.2f} | "
              f"{'' if opt is None else f'{opt:.3f}'} | {diff} |")


if __name__ == "__main__":
    main()
