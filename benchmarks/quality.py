"""Quality of the renders as a user judges them, measured by networks that did not make them.

Class visualization: a fixed set of ImageNet classes rendered with each recipe at its default
settings, judged by EfficientNet-Lite1 and Lite2 under random crops (70–100 % of the area) and
flips: the share of views with the target in the judge's top 5 and its mean probability.
Style: the ``style-offline`` preset as ``synthviz run style-offline`` renders it: the 2×2
checkerboard statistic against the content photo's, the time, and the style and content
losses under the render's network and under Lite2 (so the result is not just an adversarial
image for the loss network).

    python benchmarks/quality.py                       # everything at the issue's settings (slow)
    python benchmarks/quality.py --classes 3 --size 128 --part classviz   # a quick look
    python benchmarks/quality.py --part style

Needs ``pip install ".[judge,demo]"``. Times are for this machine, one process.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import torch

from style_quality import BEFORE
from machine import machine

CLASSES = ["goldfish", "flamingo", "monarch", "jellyfish", "Egyptian cat",
           "volcano", "daisy", "strawberry", "pizza", "school bus"]
JUDGES = ("lite1", "lite2")
# the style-offline render as it was before issue 17 (for a same-run time comparison): style's recipe
# before 0.3, spelled out once in style_quality.BEFORE
STYLE_BEFORE = {**BEFORE["0.2"], "pool": "max", "content_weight": 1.0, "scales": None}


def render_classes(model, recipe: str, classes: list[int], size: int, steps=None, batched: bool = True,
                   crops: int | None = None, seed: int = 0) -> torch.Tensor:
    """Class visualizations of ``classes`` with ``recipe`` at its defaults -> (N, 3, size, size).

    ``batched``: one ``classviz`` call with the list of classes, one render of N images, image i
    maximising class i (the recipe, its transforms and step operations act on each image alone, as
    in N separate calls; with crop views at 224 px no faster on a 2-core CPU). Otherwise one
    ``synthviz.classviz`` call per class. crops=None: the recipe's class default (lucid: 4 views);
    ``seed``: the renders' (0 is classviz's default)."""
    import synthviz

    targets = [classes] if batched else classes
    return torch.cat([synthviz.classviz(model=model, target=t, recipe=recipe, size=size, steps=steps,
                                        crops=crops, seed=seed).images for t in targets])


def classviz_table(recipes, classes, size, views, steps=None, batched=True, verbose=True, crops=None,
                   seed: int = 0) -> dict:
    """Per recipe: the model's probability, each judge's top-5 share and mean probability, s/image."""
    import synthviz
    from synthviz.judge import judge_images, load_judge

    model = synthviz.load_model("efficientnet_lite0")
    idx = [model.class_index(c) for c in classes]
    rows = {}
    for recipe in recipes:
        t = time.perf_counter()
        images = render_classes(model, recipe, idx, size, steps, batched, crops, seed)
        seconds = (time.perf_counter() - t) / len(idx)
        with torch.no_grad():
            probs = model(images).softmax(-1)[torch.arange(len(idx)), idx]
        row = {"model_p": float(probs.mean()), "s_per_image": seconds, "images": images}
        for j in JUDGES:
            m = judge_images(load_judge(j), images, idx, views=views)
            row[j] = {"top5": m["top5"], "p": m["probability"], "per_class_top5": m["per_image"]["top5"]}
        rows[recipe] = row
        if verbose:
            print(f"{recipe}: " + json.dumps({k: v for k, v in row.items() if k != "images"}), flush=True)
    return rows


def print_classviz(rows, classes, size, views, seed=0) -> None:
    print(f"\nClass visualization, {len(classes)} classes at {size} px, default settings, seed {seed}; judges see {views} random "
          "crops (70-100% area) + flips per image")
    print("| recipe | p (Lite0, made it) | Lite1 top-5 | Lite1 p | Lite2 top-5 | Lite2 p | s/image |")
    print("|---|---|---|---|---|---|---|")
    for recipe, r in rows.items():
        print(f"| {recipe} | {r['model_p']:.2f} | {r['lite1']['top5']:.0%} | {r['lite1']['p']:.2f} | "
              f"{r['lite2']['top5']:.0%} | {r['lite2']['p']:.2f} | {r['s_per_image']:.0f} |")


def style_losses(model, image, content, style) -> dict:
    """Relative content and style (Gram) errors of ``image`` under ``model``'s own style/content layers."""
    from synthviz.io import resize
    from synthviz.layers import capture
    from synthviz.objectives import feature_match
    from synthviz.painting import content_layer, score, style_layers, style_objective, style_targets

    c_layer, s_layers = content_layer(model), style_layers(model)
    c = resize(content, tuple(image.shape[-2:]))
    c_obj = feature_match(c_layer, capture(model, c, [c_layer])[c_layer])
    s_obj = style_objective(style_targets(model, [resize(style, max(image.shape[-2:]))], [1.0], s_layers),
                            [1 / len(s_layers)] * len(s_layers))
    return {"content": -score(model, c_obj, image), "style": -score(model, s_obj, image)}


def style_row(overrides: dict | None = None) -> dict:
    import synthviz
    from synthviz.io import resize
    from synthviz.judge import checkerboard, load_judge
    from synthviz.presets import load_preset, resolve_value, run_preset

    p = load_preset("style-offline")
    content = resolve_value(p.params["content"])
    style = resolve_value(p.params["styles"][0])
    t = time.perf_counter()
    r = run_preset("style-offline", overrides or {})
    seconds = time.perf_counter() - t
    image = r.images[:1]
    ref = resize(content, tuple(image.shape[-2:]))
    lite0 = synthviz.load_model(p.params["model"])
    lite2 = load_judge("lite2").model
    return {"seconds": seconds, "checker": checkerboard(image), "checker_content": checkerboard(ref),
            "lite0": style_losses(lite0, image, content, style), "lite2": style_losses(lite2, image, content, style),
            "lite0_content_photo": style_losses(lite0, ref, content, style),
            "lite2_content_photo": style_losses(lite2, ref, content, style), "image": image}


def print_style(rows: dict) -> None:
    print("\nStyle transfer, `synthviz run style-offline` (skimage:chelsea, 256 px)")
    print("| render | checkerboard / content's | s | content loss Lite0 | style loss Lite0 | "
          "content loss Lite2 | style loss Lite2 |")
    print("|---|---|---|---|---|---|---|")
    first = next(iter(rows.values()))
    print(f"| the content photo itself | 1.00 | - | 0 | {first['lite0_content_photo']['style']:.3f} | 0 | "
          f"{first['lite2_content_photo']['style']:.3f} |")
    for name, r in rows.items():
        print(f"| {name} | {r['checker'] / r['checker_content']:.2f} | {r['seconds']:.0f} | "
              f"{r['lite0']['content']:.3f} | {r['lite0']['style']:.3f} | {r['lite2']['content']:.3f} | "
              f"{r['lite2']['style']:.3f} |")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("all", "classviz", "style"), default="all")
    ap.add_argument("--recipes", default="lucid,classic")
    ap.add_argument("--classes", type=int, default=len(CLASSES), help="use the first N classes")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--steps", type=int, default=None, help="default: each recipe's own")
    ap.add_argument("--views", type=int, default=8, help="random crops/flips per image per judge")
    ap.add_argument("--crops", type=int, default=None, help="views per render step (default: each recipe's own)")
    ap.add_argument("--seed", type=int, default=0, help="the renders' seed (0: classviz's default)")
    ap.add_argument("--one-by-one", action="store_true", help="one classviz call per class (default: batched)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--before", action="store_true", help="also time the style render as it was before")
    ap.add_argument("--save", default="", help="folder to save the images in")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    if args.part in ("all", "classviz"):
        classes = CLASSES[: args.classes]
        rows = classviz_table(args.recipes.split(","), classes, args.size, args.views, args.steps, not args.one_by_one,
                              crops=args.crops, seed=args.seed)
        print_classviz(rows, classes, args.size, args.views, args.seed)
        if args.save:
            from torchvision.utils import make_grid

            from synthviz.io import save_image

            for recipe, r in rows.items():
                save_image(make_grid(r["images"], nrow=5, padding=4, pad_value=1.0),
                           f"{args.save}/classviz-{recipe}.png", overwrite=True)
    if args.part in ("all", "style"):
        rows = {"today's default": style_row()}
        if args.before:
            rows["before (L-BFGS, pixels)"] = style_row(STYLE_BEFORE)
        print_style(rows)
        if args.save:
            from synthviz.io import save_image

            for i, r in enumerate(rows.values()):
                save_image(r["image"], f"{args.save}/style-{i}.png", overwrite=True)


if __name__ == "__main__":
    main()
    print(machine())  # the machine the figures above were measured on
