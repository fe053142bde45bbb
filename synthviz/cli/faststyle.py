"""``synthviz style-train`` and ``synthviz stylize``: fast (feed-forward) style transfer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import SynthvizError
from ..io import IMAGE_SUFFIXES, VIDEO_SUFFIXES, check_writable, save_image
from .app import app
from .common import DEFAULTS, DeviceOpt, ModelOpt, OverwriteOpt, SeedOpt, WeightsOpt, command, say


@command(app, "style-train")
def style_train_cmd(
    styles: Annotated[list[Path], typer.Argument(help="One or more style images (styles are numbered from 0 in this order).")],
    content: Annotated[Path, typer.Option(help="Folder of content photos; random crops of them are the training set.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The network checkpoint to write (.pt).")] = Path("style-net.pt"),
    steps: Annotated[int, typer.Option(help="Training steps (batches).")] = 400,
    size: Annotated[int, typer.Option(help="Crop size in pixels.")] = 128,
    batch_size: Annotated[int, typer.Option(help="Crops per step.")] = 4,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 2e-3,
    content_weight: Annotated[float, typer.Option(help="Weight of the (relative) content error.")] = 1.0,
    style_weight: Annotated[float, typer.Option(help="Weight of the (relative) style error.")] = 3.0,
    tv_weight: Annotated[float, typer.Option(help="Total-variation weight.")] = 1.0,
    channels: Annotated[str, typer.Option(help="Widths of the three conv stages (Johnson: 32,64,128).")] = "16,32,48",
    res_blocks: Annotated[int, typer.Option(help="Residual blocks (Johnson: 5).")] = 3,
    stat: Annotated[str, typer.Option(help="Style statistics: moments (mean + covariance) or gram.")] = "moments",
    checkpoint_every: Annotated[int, typer.Option(help="Write the checkpoint every N steps (0 = only at the end).")] = 100,
    sample_every: Annotated[int, typer.Option(help="Write a sample grid to OUT-samples/ every N steps (0 = never).")] = 100,
    resume: Annotated[bool, typer.Option("--resume", help="Continue training the checkpoint at --out.")] = False,
    model: ModelOpt = DEFAULTS["model"], weights: WeightsOpt = "default", seed: SeedOpt = 0,
    device: DeviceOpt = "auto", overwrite: OverwriteOpt = False,
) -> None:
    """Train one style network for all STYLES on crops of the photos in --content."""
    from ..faststyle.train import train_style_net

    check_writable(out, {".pt", ".pth"}, inputs=styles)
    try:
        widths = [int(c) for c in channels.split(",")]
    except ValueError:
        raise SynthvizError(f"cannot read --channels '{channels}'; write three widths like 16,32,48") from None
    result = train_style_net(model, [str(s) for s in styles], content, out=out, steps=steps, size=size,
                             batch_size=batch_size, lr=lr, content_weight=content_weight, style_weight=style_weight,
                             tv_weight=tv_weight, channels=widths, res_blocks=res_blocks, stat=stat,
                             checkpoint_every=checkpoint_every, sample_every=sample_every, resume=resume,
                             overwrite=overwrite, weights=weights, seed=seed, device=device, progress=True)
    info = result.info
    say(f"{info['report']}; style loss {info['first'].get('style', float('nan')):.3g} -> {info['last'].get('style', float('nan')):.3g}")
    say(f"saved {info['path']} (styles: {', '.join(f'{k} {n}' for k, n in enumerate(info['styles']))})")


@command(app, "stylize")
def stylize_cmd(
    source: Annotated[Path, typer.Argument(help="An image, a folder of images, or a video (MP4/GIF).")],
    net: Annotated[Path, typer.Option(help="A network trained by `synthviz style-train`.")],
    style: Annotated[Optional[list[int]], typer.Option(help="Style index (from 0); repeat once per --mask.")] = None,
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
    from ..faststyle.stylize import folder_images, input_kind
    from ..techniques.stylize import stylize

    kind = input_kind(source)
    options = dict(style=style if style and len(style) > 1 else (style[0] if style else 0), mix=mix,
                   masks=[str(m) for m in mask] if mask else None, mask_from_saliency=mask_from_saliency,
                   threshold=threshold, grabcut=grabcut, size=size, device=device)
    if kind == "video":
        check_writable(out, VIDEO_SUFFIXES, inputs=[source])
        _stylize_video(source, net, out, dict(options, model=model), blend, overwrite)
    elif kind == "folder":
        if out.suffix:
            raise SynthvizError(f"--out {out} must be a folder when the input is a folder")
        files = folder_images(source)
        for f in files:
            result = stylize(model, f, net=net, **options)
            path = save_image(result.images[0], out / f"{f.stem}.png", overwrite)
        say(f"stylized {len(files)} image(s) into {out} ({path.name} last)")
    else:
        check_writable(out, IMAGE_SUFFIXES, inputs=[source])
        result = stylize(model, source, net=net, **options)
        say(f"{result.info['report']}\nsaved {save_image(result.images[0], out, overwrite)}")


def _stylize_video(source: Path, net: Path, out: Path, options: dict, blend: float, overwrite: bool) -> None:
    from ..faststyle.masks import load_masks, saliency_mask
    from ..faststyle.stylize import get_net, style_choices
    from ..faststyle.video import read_video, stylize_video, temporal_error, write_video
    from ..io import resize
    from ..techniques.common import get_model

    frames, fps = read_video(source)
    if options["size"]:
        frames = resize(frames, options["size"])
    model, names = get_net(net, options["device"])
    choices = style_choices(model, options["style"], options["mix"])
    masks = None
    if options["mask_from_saliency"]:  # the mask of the first frame, for the whole clip
        masks = [saliency_mask(get_model(options["model"], device=options["device"]), frames[:1],
                               threshold=options["threshold"], grabcut=options["grabcut"])]
    elif options["masks"]:
        masks = load_masks(options["masks"], len(choices), tuple(frames.shape[-2:]))
    styled = stylize_video(model, frames, choices, blend=blend, masks=masks)
    path = write_video(styled, out, fps=fps, overwrite=overwrite)
    report = temporal_error(styled, frames) if len(frames) > 1 else None
    say(f"stylized {len(frames)} frame(s) at {fps:.3g} fps" + (f"; temporal error {report['warp_error']:.3g}" if report else ""))
    say(f"saved {path}")


def is_video(content: Path, out: Path) -> bool:
    """A video CONTENT for ``synthviz style``: an MP4/WebM/MOV, or a GIF written to a video --out."""
    suffix = content.suffix.lower()
    return suffix in VIDEO_SUFFIXES - {".gif"} or (suffix == ".gif" and out.suffix.lower() in VIDEO_SUFFIXES - {".gif"})


def style_video_cmd(content: Path, styles: list[Path], out: Path, *, size: int, steps: int, overwrite: bool,
                    **options) -> None:
    """``synthviz style VIDEO STYLE --out OUT.mp4``: every frame styled, warm-started from the previous
    result warped by optical flow, with a temporal loss (Ruder et al. 2016)."""
    from ..faststyle.video import read_video, write_video
    from ..faststyle.video_style import style_video

    check_writable(out, VIDEO_SUFFIXES, inputs=[content, *styles])
    frames, fps = read_video(content)
    result = style_video(options.pop("model"), frames, [str(s) for s in styles], size=size, steps=steps,
                         progress=True, **options)
    temporal = result.info["temporal"]
    say(f"styled {len(frames)} frame(s) at {fps:.3g} fps" + (f"; temporal error {temporal['warp_error']:.3g}" if temporal else ""))
    say(f"saved {write_video(result.images, out, fps=fps, overwrite=overwrite)}")
