"""``synthviz fool``, ``synthviz invert`` and ``synthviz dream``: techniques that start from a photo."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..io import IMAGE_SUFFIXES, check_writable, save_image
from ..techniques.dream import dream
from ..techniques.fool import fool
from ..techniques.invert import invert
from .app import app
from .common import (DEFAULTS, DeviceOpt, ModelOpt, OutOpt, OverwriteOpt, SeedOpt, VideoOpt, WeightsOpt, command,
                     frame_every, prepare_outputs, run_render, say)

ImageArg = Annotated[Path, typer.Argument(help="The photo (PNG, JPEG...). It is never modified or overwritten.")]


def _sibling(out: Path, suffix: str, ext: str | None = None) -> Path:
    """``fool.png`` -> ``fool-diff.png``: a companion file next to ``--out``."""
    return out.with_name(f"{out.stem}{suffix}{ext or out.suffix}")


@command(app, "fool")
def fool_cmd(
    image: ImageArg,
    target: Annotated[Optional[str], typer.Option("--target", "-t", help="Class to reach (index or name); leave out for untargeted: any other class.")] = None,
    epsilon: Annotated[Optional[str], typer.Option("--epsilon", "-e", help="L∞ budget in pixel units, e.g. 2/255 (sign steps, projected). Leave out for the unconstrained recipe that stops once fooled.")] = None,
    confidence: Annotated[float, typer.Option(help="Keep going until the new class has at least this probability.")] = 0.0,
    size: Annotated[Optional[int], typer.Option(help="Resize the photo's longer side to this first (default: as it is).")] = None,
    steps: Annotated[Optional[int], typer.Option(help="At most this many steps (default 500; 100 with --epsilon).")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Step size: L2 norm of a step (default 0.1/255·√(3HW)); with --epsilon the sign step (default ε/4).")] = None,
    diff: Annotated[Optional[Path], typer.Option(help="Where to save original | fooled | change ×10 | diverging map (default: OUT-diff.png).")] = None,
    model: ModelOpt = DEFAULTS["model"], weights: WeightsOpt = "default", seed: SeedOpt = 0, device: DeviceOpt = "auto",
    out: OutOpt = Path("fool.png"), video: VideoOpt = None, overwrite: OverwriteOpt = False,
) -> None:
    """Change IMAGE as little as possible so the model predicts --target; saves the fooled PNG
    (which still fools when read back) and the magnified difference."""
    diff = diff or _sibling(out, "-diff")
    prepare_outputs(out, video, inputs=[image])
    check_writable(diff, IMAGE_SUFFIXES, inputs=[image])
    run = functools.partial(fool, model, image)
    result = run_render(run, out, video, overwrite, image=lambda r: r.images[0], target=target, epsilon=epsilon, confidence=confidence, size=size,
                        steps=steps, lr=lr, weights=weights, seed=seed, device=device, progress=True,
                        frame_every=frame_every(video, steps, 100))
    say(f"saved {save_image(result.figure, diff, overwrite)}")
    say(result.info["report"])


@command(app, "invert")
def invert_cmd(
    image: ImageArg,
    layer: Annotated[Optional[str], typer.Option(help="Layer to reconstruct from (default: the model's mid layer).")] = None,
    layers: Annotated[Optional[str], typer.Option(help="Several layers, e.g. _blocks.1,_blocks.5,_blocks.8: one row, original first.")] = None,
    size: Annotated[int, typer.Option(help="Longer side of the photo and of the reconstruction.")] = 128,
    steps: Annotated[int, typer.Option(help="Optimization steps per layer.")] = 200,
    lr: Annotated[float, typer.Option(help="Adam learning rate (decays to a tenth).")] = 0.05,
    tv_weight: Annotated[float, typer.Option(help="Total variation weight, multiplied by the layer's stride^1.5.")] = 0.5,
    alpha_weight: Annotated[float, typer.Option(help="α-norm (α = 6) weight: keeps pixels in range.")] = 0.1,
    model: ModelOpt = DEFAULTS["model"], weights: WeightsOpt = "default", seed: SeedOpt = 0, device: DeviceOpt = "auto",
    out: OutOpt = Path("invert.png"), video: VideoOpt = None, overwrite: OverwriteOpt = False,
) -> None:
    """Reconstruct IMAGE from its activations at a layer, starting from noise (Mahendran & Vedaldi).
    With --layers, saves one labelled row: the original, then one reconstruction per layer."""
    prepare_outputs(out, video, inputs=[image])
    run = functools.partial(invert, model, image)
    result = run_render(run, out, video, overwrite, image=lambda r: r.picture() if len(r.images) > 1 else r.images[0],
                        layer=layer, layers=layers, size=size, steps=steps, lr=lr, tv_weight=tv_weight,
                        alpha_weight=alpha_weight, weights=weights, seed=seed, device=device, progress=True,
                        frame_every=frame_every(video, steps, 200))
    say(result.info["report"])


@command(app, "dream")
def dream_cmd(
    image: ImageArg,
    layer: Annotated[Optional[str], typer.Option(help="Layer to amplify (default: the model's mid layer).")] = None,
    channel: Annotated[Optional[int], typer.Option(help="Amplify only this channel of the layer.")] = None,
    guide: Annotated[Optional[Path], typer.Option(help="Guide image: amplify the features that best match it.")] = None,
    size: Annotated[Optional[int], typer.Option(help="Resize the photo's longer side to this first (default: as it is).")] = None,
    octaves: Annotated[int, typer.Option(help="Number of scales, small to full size.")] = 4,
    octave_scale: Annotated[float, typer.Option(help="Size ratio between octaves.")] = 1.4,
    steps: Annotated[int, typer.Option(help="Steps per octave.")] = 10,
    lr: Annotated[float, typer.Option(help="Mean absolute pixel change per step (default 1.5/255).")] = 1.5 / 255,
    jitter: Annotated[int, typer.Option(help="Random roll of up to this many pixels per step.")] = 32,
    tile: Annotated[int, typer.Option(help="Gradient tile side (px) for large photos; 0: never tile.")] = 512,
    zoom_frames: Annotated[int, typer.Option(help="Make the zoom-and-dream video with this many frames.")] = 0,
    zoom: Annotated[float, typer.Option(help="Zoom factor per video frame.")] = 1.05,
    model: ModelOpt = DEFAULTS["model"], weights: WeightsOpt = "default", seed: SeedOpt = 0, device: DeviceOpt = "auto",
    out: OutOpt = Path("dream.png"),
    video: Annotated[Optional[Path], typer.Option(help="Save a GIF/MP4: the zoom video with --zoom-frames (default OUT.mp4), else the dream unfolding.")] = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Amplify what a layer (or one channel) sees in IMAGE: DeepDream with octaves, roll jitter,
    tiled gradients for large photos, an optional guide image and a zoom video."""
    if zoom_frames and video is None:
        video = _sibling(out, "", ".mp4")
    prepare_outputs(out, video, inputs=[p for p in (image, guide) if p is not None])
    run = functools.partial(dream, model, image)
    result = run_render(run, out, video, overwrite, layer=layer, channel=channel, guide=guide, size=size,
                        octaves=octaves, octave_scale=octave_scale, steps=steps, lr=lr, jitter=jitter, tile=tile,
                        zoom_frames=zoom_frames, zoom=zoom, weights=weights, seed=seed, device=device, progress=True,
                        frame_every=1 if video is not None and not zoom_frames else 0)
    say(result.info["report"])
