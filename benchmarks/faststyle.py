"""Fast style on this machine: train one network for three styles, then compare it with the
optimisation-based ``style`` at the same size (time and the same style loss), and measure the
temporal error of video stylisation (flow-guided blending vs independent frames; and for the
optimisation-based style, the Ruder temporal loss vs independent frames).

    python benchmarks/faststyle.py                      # ~10 min on a shared 2-core CPU
    python benchmarks/faststyle.py --steps 100 --no-opt-video   # a quick look

Content crops are random crops (with flips) of scikit-image's chelsea, coffee and rocket photos;
astronaut is held out for the measurements. Styles: immunohistochemistry, hubble_deep_field, retina.
Writes the network to WORKDIR/fast-style.pt and the figure to --figure.
"""

from __future__ import annotations

import argparse
import random
import time
import warnings
from pathlib import Path

import torch
from machine import machine

PHOTOS = ("chelsea", "coffee", "rocket")
STYLES = ("immunohistochemistry", "hubble_deep_field", "retina")


def _photo(name: str) -> torch.Tensor:
    import skimage.data

    from synthviz.io import to_tensor

    return to_tensor(getattr(skimage.data, name)(), source=name)


def make_crops(folder: Path, count: int, side: int = 160, seed: int = 0) -> None:
    """``count`` random square crops (25–100% of the shorter side, flipped half the time) of the photos."""
    from synthviz.io import resize, save_image

    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    photos = [_photo(n) for n in PHOTOS]
    for i in range(count):
        im = rng.choice(photos)
        h, w = im.shape[-2:]
        s = round(min(h, w) * rng.uniform(0.25, 1.0))
        top, left = rng.randrange(h - s + 1), rng.randrange(w - s + 1)
        crop = resize(im[..., top : top + s, left : left + s], (side, side))
        save_image(crop.flip(-1) if rng.random() < 0.5 else crop, folder / f"crop-{i:04d}.png", overwrite=True)


def pan_clip(frames: int, side: int, step: int = 3) -> torch.Tensor:
    """A camera pan over the held-out astronaut photo: (frames, 3, side, side)."""
    from synthviz.io import resize

    big = resize(_photo("astronaut"), side * 2)
    return torch.cat([big[..., side // 4 : side // 4 + side, step * t : step * t + side] for t in range(frames)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--crops", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/synthviz-faststyle"))
    ap.add_argument("--figure", type=Path, default=Path("gallery/fast-style.png"))
    ap.add_argument("--no-opt-video", action="store_true", help="skip the optimisation-based video (the slowest part)")
    ap.add_argument("--reuse", action="store_true", help="use the network already at WORKDIR/fast-style.pt (no training)")
    ap.add_argument("--no-compare", action="store_true", help="skip the optimisation-based style comparison")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)

    import synthviz
    from synthviz.faststyle.checkpoint import load_net
    from synthviz.faststyle.loss import PerceptualLoss
    from synthviz.faststyle.masks import composite, saliency_mask
    from synthviz.faststyle.train import train_style_net
    from synthviz.faststyle.video import clip_flows, stylize_video, temporal_error
    from synthviz.faststyle.video_style import style_video
    from synthviz.io import label_image, make_grid, resize, save_image

    model = synthviz.load_model("efficientnet_lite0")
    dev = model.device
    print(f"{machine(dev)}; ratios from one run")
    crops = args.workdir / "crops"
    if len(list(crops.glob("*.png"))) < args.crops:
        make_crops(crops, args.crops)
    styles = [_photo(n) for n in STYLES]
    net_path = args.workdir / "fast-style.pt"
    if not (args.reuse and net_path.exists()):
        result = train_style_net(model, styles, crops, out=net_path, steps=args.steps, size=args.size,
                                 batch_size=args.batch_size, names=list(STYLES), overwrite=True, sample_every=100,
                                 progress=True, content_weight=1.0)  # the default before 0.5, as its figures were made
        info = result.info
        print(f"train: {len(STYLES)} styles, {info['steps']} steps x {args.batch_size} crops at {args.size} px from "
              f"{args.crops} crops in {info['seconds']:.0f} s ({info['seconds_per_step']:.2f} s/step); "
              f"style loss {info['first']['style']:.3g} -> {info['last']['style']:.3g}, "
              f"content loss {info['first']['content']:.3g} -> {info['last']['content']:.3g}")

    net, _ = load_net(net_path, dev)
    content = resize(_photo("astronaut"), args.size)
    loss = PerceptualLoss(model, [resize(s, args.size) for s in styles], stat="moments")
    with torch.no_grad():
        net(content.to(dev), 0)  # warm-up
        t = time.perf_counter()
        for _ in range(10):
            net(content.to(dev), 0)
        fast_s = (time.perf_counter() - t) / 10
    print(f"\n{'style':22s} {'stylize s':>10s} {'style s':>9s} {'speed-up':>9s} {'style loss: content':>20s} "
          f"{'net':>7s} {'optimised':>10s}")
    outputs = []
    for k, name in enumerate(STYLES):
        with torch.no_grad():
            y = net(content.to(dev), k).cpu()
        outputs.append(y)
        if args.no_compare:
            continue
        t = time.perf_counter()
        opt = synthviz.style(model, content, styles[k], size=args.size, stat="moments")
        slow_s = time.perf_counter() - t
        print(f"{name:22s} {fast_s:10.4f} {slow_s:9.1f} {slow_s / fast_s:8.0f}x {loss.style_loss(content, k):20.3g} "
              f"{loss.style_loss(y, k):7.3g} {opt.info['style_loss']:10.3g}")
    with torch.no_grad():
        mix = net(content.to(dev), torch.tensor([0.5, 0.5, 0.0])).cpu()
    mask = saliency_mask(model, content, grabcut=True)
    masked = composite([outputs[1]], [mask], content)

    tiles = [content, *outputs, mix, masked]
    labels = ["content", *STYLES, "mix 0.5/0.5", "saliency mask"]
    square = [s[..., : min(s.shape[-2:]), : min(s.shape[-2:])] for s in styles]
    top = [torch.ones_like(content), *[resize(s, tuple(content.shape[-2:])) for s in square], torch.ones_like(content),
           mask.expand(1, 3, -1, -1)]
    grid = make_grid(torch.cat([torch.cat([label_image(t[0], "") for t in top]),
                                torch.cat([label_image(t[0], lab) for t, lab in zip(tiles, labels)])]), ncol=len(tiles))
    print(f"\nfigure: {save_image(grid, args.figure, overwrite=True)}")

    frames = pan_clip(12, args.size)
    flows = clip_flows(frames)
    t = time.perf_counter()
    ind = stylize_video(net, frames, [0], blend=0)
    ind_s = time.perf_counter() - t
    blended = stylize_video(net, frames, [0], blend=0.7)  # computes its own flows
    video_s = time.perf_counter() - t - ind_s
    e_ind, e_blend = temporal_error(ind, frames, flows), temporal_error(blended, frames, flows)
    e_frozen = temporal_error(ind[:1].expand(len(frames), -1, -1, -1), frames, flows)
    e_input = temporal_error(frames, frames, flows)
    print(f"\nvideo: {len(frames)} frames {args.size} px pan, {e_ind['reliable']:.0%} of pixels with reliable flow; "
          f"stylize {ind_s:.2f} s independent, {video_s:.2f} s with flow (forward + backward Farneback) and blending")
    print(f"{'':34s} {'warp error':>10s} {'change':>9s} {'relative':>9s}")
    for name, e in [("input clip", e_input), ("stylize, independent frames", e_ind), ("stylize, flow-guided blend 0.7", e_blend),
                    ("frozen (first output repeated)", e_frozen)]:
        print(f"{name:34s} {e['warp_error']:10.3g} {e['change']:9.3g} {e['relative']:9.3g}")
    print(f"blend / independent warp error: {e_blend['warp_error'] / e_ind['warp_error']:.2f}x (target <= 0.5x)")

    if not args.no_opt_video:
        small = pan_clip(5, 96)
        t = time.perf_counter()
        per = style_video(model, small, styles[0], steps=30, temporal_weight=0)
        mid = time.perf_counter()
        tmp = style_video(model, small, styles[0], steps=30)
        end = time.perf_counter()
        a, b = per.info["temporal"], tmp.info["temporal"]
        print(f"\nstyle on a video (5 frames, 96 px, 30 then 15 L-BFGS steps): independent {a['warp_error']:.3g} "
              f"({mid - t:.0f} s), warm start + temporal loss {b['warp_error']:.3g} ({end - mid:.0f} s): "
              f"{b['warp_error'] / a['warp_error']:.2f}x")


if __name__ == "__main__":
    main()
