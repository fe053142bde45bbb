"""AdaIN against `style` (issue 30), in one run: train an AdaIN decoder on what ships offline
(random crops of scikit-image's photos as content, its style images and textures as styles), then

* the time of one AdaIN pass against `style`'s default at 512 px on the issue's pair (chelsea in the
  style of immunohistochemistry), both with their networks loaded once (as a folder or a script
  stylises), best of 3 for AdaIN after a warm-up, and their ratio; and AdaIN's time with loading
  the checkpoint and its model on every call (one CLI call per image);
* the style judge's content kept, style gap and checkerboard of both over the 4 x 4 set of
  ``style_quality.py`` at 256 px.

    python benchmarks/adain.py [--steps 1000] [--size 128] [--threads 2] [--workdir /tmp/adain-bench] [--reuse]
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import torch

from machine import best_of, machine
from style_quality import CONTENTS, STYLES, measure, print_table

TRAIN_STYLES = (*STYLES, "brick", "grass", "gravel")


def write_training_images(folder: Path) -> tuple[Path, Path]:
    """``folder/content`` (the content photos) and ``folder/styles`` (style images and textures)."""
    from synthviz.io import save_image
    from synthviz.presets import resolve_value

    content, styles = folder / "content", folder / "styles"
    for sub, names in ((content, CONTENTS), (styles, TRAIN_STYLES)):
        sub.mkdir(parents=True, exist_ok=True)
        for name in names:
            save_image(resolve_value(f"skimage:{name}"), sub / f"{name}.png", overwrite=True)
    return content, styles


def terms(losses: dict) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in losses.items())


def main(argv=None) -> None:
    import synthviz
    from synthviz.faststyle.adain_train import load_adain, train_adain
    from synthviz.presets import resolve_value

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--size", type=int, default=128, help="training crops' side")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/adain-bench"))
    ap.add_argument("--reuse", action="store_true", help="use the decoder already at WORKDIR/adain.pt (no training)")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    print(machine(), flush=True)
    content, styles = write_training_images(args.workdir)
    net = args.workdir / "adain.pt"
    if not args.reuse:
        trained = train_adain("efficientnet_lite0", content, styles, out=net, steps=args.steps, size=args.size,
                              sample_every=0, checkpoint_every=0, overwrite=True)
        print(f"trained {args.steps} steps at {args.size} px in {trained.info['seconds']:.0f} s; loss terms, first / "
              f"last 10 % of the steps: {terms(trained.info['first'])} / {terms(trained.info['last'])}", flush=True)
    c, s = resolve_value("skimage:chelsea"), resolve_value("skimage:immunohistochemistry")
    loaded, model = load_adain(net), synthviz.load_model("efficientnet_lite0")
    adain = lambda path_or_net: synthviz.stylize(image=c, net=path_or_net, style_images=[s], size=512)  # noqa: E731
    adain(loaded)  # warm-up
    t_adain, t_cold = best_of(lambda: adain(loaded), 3), best_of(lambda: adain(net), 3)
    t_style = best_of(lambda: synthviz.style(model, c, s, size=512))
    print(f"512 px, chelsea x immunohistochemistry, networks loaded once: AdaIN {t_adain:.3f} s, style {t_style:.1f} s: "
          f"{t_style / t_adain:.0f}x faster; AdaIN loading its checkpoint and model every call: {t_cold:.2f} s "
          f"({t_style / t_cold:.0f}x)", flush=True)
    rows = measure(["default", f"adain:{net}"], CONTENTS, STYLES, 256, None, None)
    print_table(rows, 256, None)


if __name__ == "__main__":
    main()
