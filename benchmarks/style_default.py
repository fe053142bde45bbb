"""Style transfer's default against the defaults before it, in one run (issue 30: "no slower than
today's default at 512 px"): the judge's three numbers (``synthviz.judge.style_scores``: content
kept, style gap, checkerboard over the photo's), the seconds and the report line, for
skimage:chelsea in the style of skimage:immunohistochemistry (the issue's pair; ``--style`` for
another), default steps and ladder.

    python benchmarks/style_default.py [--size 512] [--threads 2] [--style hubble_deep_field]
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch

from machine import machine
from style_quality import BEFORE

RECIPES = {"default (0.5: content at _blocks.15, style 15, checkerboard 1300, jitter 1, 100 steps)": {},
           "0.4 default (content at _blocks.8, style 3, TV 200)": BEFORE["0.4"],
           "before 0.3 (L-BFGS on pixels, TV 1)": BEFORE["0.2"]}


def main(argv=None) -> None:
    import synthviz
    from synthviz.judge import style_scores
    from synthviz.presets import resolve_value

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--content", default="chelsea")
    ap.add_argument("--style", default="immunohistochemistry")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    c, s = resolve_value(f"skimage:{args.content}"), resolve_value(f"skimage:{args.style}")
    print(machine(), flush=True)
    print(f"{args.content} x {args.style} at {args.size} px")
    print("| recipe | content kept | style gap | checkerboard | s |\n|---|---|---|---|---|")
    for name, kw in RECIPES.items():
        t = time.perf_counter()
        r = synthviz.style("efficientnet_lite0", c, s, size=args.size, **kw)
        seconds = time.perf_counter() - t
        j = style_scores(r.images, c, s)
        print(f"| {name} | {j['content']:.3f} | {j['style_gap']:.3f} | {j['checkerboard']:.2f} | {seconds:.1f} |",
              flush=True)


if __name__ == "__main__":
    main()
