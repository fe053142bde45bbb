"""``synthviz style-train``, ``synthviz adain-train`` and ``synthviz stylize``: fast (feed-forward) style transfer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..checks import in_range, positive
from ..errors import SynthvizError
from ..io import IMAGE_SUFFIXES, check_writable, save_image
from .app import app
from .common import DEFAULTS, DeviceOpt, ModelOpt, OverwriteOpt, SeedOpt, WeightsOpt, command, say

# the training options style-train and adain-train share
ContentDirOpt = Annotated[Path, typer.Option(help="Folder of content photos; random crops of them are the training set.")]
TrainStepsOpt = Annotated[int, typer.Option(help="Training steps (batches).")]
CropSizeOpt = Annotated[int, typer.Option(help="Crop size in pixels.")]
CheckpointEveryOpt = Annotated[int, typer.Option(help="Save the train state to --out every N steps (0 = only at the end and on Ctrl-C).")]
SampleEveryOpt = Annotated[int, typer.Option(help="Write a sample grid to OUT-samples/ every N steps (0 = never).")]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue training the checkpoint at --out.")]


def stopped_training(stop: KeyboardInterrupt, out: Path) -> None:
    """Ctrl-C during style-train or adain-train: say where the train state is (or that nothing was
    written) and exit 130."""
    from ..faststyle.train import TrainingInterrupted

    if isinstance(stop, TrainingInterrupted) and stop.path is not None:
        say(f"interrupted at step {stop.step} of {stop.steps}: the train state is saved to {stop.path}; "
            "run the same command with --resume to continue")
    else:
        say(f"interrupted before a training step finished: nothing was written to {out}")
    raise typer.Exit(130) from None


def trained(result, styles: bool = False) -> None:
    """What style-train and adain-train say when training ends: the report, the style loss's first
    and last values, the checkpoint written (and its styles' indices, for ``--style``)."""
    info = result.info
    first, last = info["first"].get("style", float("nan")), info["last"].get("style", float("nan"))
    say(f"{info['report']}; style loss {first:.3g} -> {last:.3g}")
    listed = f" (styles: {', '.join(f'{k} {n}' for k, n in enumerate(info['styles']))})" if styles else ""
    say(f"saved {info['path']}{listed}")


@command(app, "style-train")
def style_train_cmd(
    styles: Annotated[list[Path], typer.Argument(help="One or more style images (styles are numbered from 0 in this order).")],
    content: ContentDirOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="The network checkpoint to write (.pt).")] = Path("style-net.pt"),
    steps: TrainStepsOpt = 400,
    size: CropSizeOpt = 128,
    batch_size: Annotated[int, typer.Option(help="Crops per step.")] = 4,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 2e-3,
    content_weight: Annotated[float, typer.Option(help="Weight of the (relative) content error (4 since 0.5, "
                                                  "chosen by the style judge; lower: more style).")] = 4.0,
    style_weight: Annotated[float, typer.Option(help="Weight of the (relative) style error.")] = 3.0,
    tv_weight: Annotated[float, typer.Option(help="Total-variation weight.")] = 1.0,
    channels: Annotated[str, typer.Option(help="Widths of the three conv stages (Johnson: 32,64,128).")] = "16,32,48",
    res_blocks: Annotated[int, typer.Option(help="Residual blocks (Johnson: 5).")] = 3,
    stat: Annotated[str, typer.Option(help="Style statistics: moments (mean + covariance) or gram.")] = "moments",
    checkpoint_every: CheckpointEveryOpt = 100,
    sample_every: SampleEveryOpt = 100,
    resume: ResumeOpt = False,
    model: ModelOpt = DEFAULTS["model"], weights: WeightsOpt = "default", seed: SeedOpt = 0,
    device: DeviceOpt = "auto", overwrite: OverwriteOpt = False,
) -> None:
    """Train one style network for all STYLES on crops of the photos in --content. The train state is
    saved to --out every --checkpoint-every steps and on Ctrl-C; --resume continues it."""
    from ..faststyle.train import train_style_net

    check_writable(out, {".pt", ".pth"}, inputs=styles)
    try:
        widths = [int(c) for c in channels.split(",")]
    except ValueError:
        raise SynthvizError(f"cannot read --channels '{channels}'; write three widths like 16,32,48") from None
    try:
        result = train_style_net(model, [str(s) for s in styles], content, out=out, steps=steps, size=size,
                                 batch_size=batch_size, lr=lr, content_weight=content_weight,
                                 style_weight=style_weight, tv_weight=tv_weight, channels=widths,
                                 res_blocks=res_blocks, stat=stat, checkpoint_every=checkpoint_every,
                                 sample_every=sample_every, resume=resume, overwrite=overwrite, weights=weights,
                                 seed=seed, device=device, progress=True)
    except KeyboardInterrupt as stop:
        stopped_training(stop, out)
    trained(result, styles=True)


@command(app, "adain-train")
def adain_train_cmd(
    content: ContentDirOpt,
    styles: Annotated[Path, typer.Option(help="Folder of style images; random crops of them are the styles seen in training.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The AdaIN network checkpoint to write (.pt).")] = Path("adain.pt"),
    steps: TrainStepsOpt = 400,
    size: CropSizeOpt = 128,
    batch_size: Annotated[int, typer.Option(help="Crops per step (content and style each).")] = 4,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    content_weight: Annotated[float, typer.Option(help="Weight of the (relative) error against the AdaIN features.")] = 1.0,
    style_weight: Annotated[float, typer.Option(help="Weight of the (relative) error of the channel means and stds at the style layers.")] = 3.0,
    layer: Annotated[Optional[str], typer.Option(help="Encoder layer AdaIN works at (default: the deepest style layer of stride 8 or less).")] = None,
    checkpoint_every: CheckpointEveryOpt = 100,
    sample_every: SampleEveryOpt = 100,
    resume: ResumeOpt = False,
    model: ModelOpt = DEFAULTS["model"], weights: WeightsOpt = "default", seed: SeedOpt = 0,
    device: DeviceOpt = "auto", overwrite: OverwriteOpt = False,
) -> None:
    """Train an AdaIN decoder (Huang & Belongie 2017) on --model's features: afterwards
    `synthviz stylize IMAGE --net OUT --style-image STYLE` paints with any style image, no retraining."""
    from ..faststyle.adain_train import train_adain

    check_writable(out, {".pt", ".pth"})
    try:
        result = train_adain(model, content, styles, out=out, steps=steps, size=size, batch_size=batch_size, lr=lr,
                             content_weight=content_weight, style_weight=style_weight, layer=layer,
                             checkpoint_every=checkpoint_every, sample_every=sample_every, resume=resume,
                             overwrite=overwrite, weights=weights, seed=seed, device=device, progress=True)
    except KeyboardInterrupt as stop:
        stopped_training(stop, out)
    trained(result)


@command(app, "stylize")
def stylize_cmd(
    source: Annotated[Path, typer.Argument(help="An image, a folder of images, or a video (MP4/GIF).")],
    net: Annotated[Path, typer.Option(help="A network trained by `synthviz style-train`.")],
    style: Annotated[Optional[list[int]], typer.Option(help="Style index (from 0); repeat once per --mask (several without --mask are mixed equally).")] = None,
    style_image: Annotated[Optional[list[Path]], typer.Option(help="With an AdaIN --net (adain-train): any style image; repeat to mix (--mix) or once per --mask.")] = None,
    alpha: Annotated[float, typer.Option(help="With --style-image: 1 = full style, 0 = the content.")] = 1.0,
    preserve_colors: Annotated[bool, typer.Option("--preserve-colors", help="With --style-image: recolour the style images to the content's colours first.")] = False,
    mix: Annotated[Optional[str], typer.Option(help="Mix the styles, one weight per style, e.g. 0.3,0.7.")] = None,
    mask: Annotated[Optional[list[Path]], typer.Option(help="Mask image (white = styled); repeat with one --style each.")] = None,
    mask_from_saliency: Annotated[bool, typer.Option("--mask-from-saliency", help="Style only where --model looks (Grad-CAM).")] = False,
    threshold: Annotated[float, typer.Option(help="Saliency threshold, 0-1 of the map's range.")] = 0.5,
    grabcut: Annotated[bool, typer.Option("--grabcut", help="Refine the saliency mask with GrabCut.")] = False,
    blend: Annotated[float, typer.Option(help="Video: weight of the previous output warped by optical flow (0 = frames independent).")] = 0.7,
    size: Annotated[Optional[int], typer.Option(help="Resize the longer side first (default: keep the size).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output image, folder (for a folder) or video.")] = Path("stylized.png"),
    model: ModelOpt = DEFAULTS["model"], device: DeviceOpt = "auto", overwrite: OverwriteOpt = False,
) -> None:
    """Paint SOURCE with a trained style network, in one forward pass per image or frame."""
    from ..faststyle.stylize import FolderInterrupted, input_kind, stylize_folder
    from ..faststyle.video import stylize_video_file
    from ..techniques.stylize import stylize

    positive("--size", size, integer=True)
    if style_image:
        return _adain_stylize(source, net, style_image, mix, mask, alpha, preserve_colors, size, out, device, overwrite)
    if mask_from_saliency:
        in_range("--threshold", threshold, 0, 1)
    kind = input_kind(source)
    options = dict(style=style if style and len(style) > 1 else (style[0] if style else 0), mix=mix,
                   masks=[str(m) for m in mask] if mask else None, mask_from_saliency=mask_from_saliency,
                   threshold=threshold, grabcut=grabcut, model=model, size=size, device=device)
    if kind == "video":
        result = stylize_video_file(net, source, out, blend=blend, overwrite=overwrite, **options)
        say(f"{result.info['report']}\nsaved {result.info['path']}")
    elif kind == "folder":
        try:
            paths = stylize_folder(net, source, out, overwrite=overwrite, **options)
        except FolderInterrupted as stop:  # every image written is whole (atomic writes)
            last = f" ({stop.paths[-1].name} last)" if stop.paths else ""
            say(f"interrupted: {len(stop.paths)} of {stop.total} image(s) stylized into {stop.out}{last}; "
                "the rest were not written")
            raise typer.Exit(130) from None
        say(f"stylized {len(paths)} image(s) into {out}" + (f" ({paths[-1].name} last)" if paths else ""))
    else:
        check_writable(out, IMAGE_SUFFIXES, inputs=[source])
        result = stylize(image=source, net=net, **options)
        say(f"{result.info['report']}\nsaved {save_image(result.images[0], out, overwrite)}")


def _adain_stylize(source: Path, net: Path, style_images: list[Path], mix, mask, alpha: float, preserve_colors: bool,
                   size, out: Path, device, overwrite: bool) -> None:
    """``stylize --style-image``: an image painted by an AdaIN network in any style."""
    from ..faststyle.adain_stylize import adain_stylize
    from ..faststyle.stylize import input_kind

    if input_kind(source) != "image":
        raise SynthvizError("--style-image stylizes one image; pass an image, not a folder or a video")
    in_range("--alpha", alpha, 0, 1)
    check_writable(out, IMAGE_SUFFIXES, inputs=[source, *style_images])
    result = adain_stylize(net, source, [str(s) for s in style_images], mix=mix, alpha=alpha,
                           preserve_colors=preserve_colors, masks=[str(m) for m in mask] if mask else None, size=size,
                           device=device)
    say(f"{result.info['report']}\nsaved {save_image(result.images[0], out, overwrite)}")
