"""Applying a trained style network: one forward pass per image, any size (the output has the
input's size), one style, a mixture of styles (mixing the conditional instance norm's (γ, β)),
or a style per masked region."""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from ..errors import BadValue, SynthvizError
from ..io import VIDEO_SUFFIXES, as_image, list_images, make_grid, read_images, resize, save_image, skipped_note
from ..models import DEFAULT_MODEL, load_model
from ..result import Result
from .checkpoint import load_net
from .masks import composite, load_masks, saliency_mask
from .net import TransformNet

NetLike = TransformNet | str | os.PathLike


def get_net(net: NetLike, device: str | torch.device | None = None) -> tuple[TransformNet, list[str]]:
    """(network in eval mode, style names) from a checkpoint path or a network."""
    if isinstance(net, TransformNet):
        if device is not None:
            from ..models import resolve_device

            net = net.to(resolve_device(device))
        return net.eval(), [f"style {k}" for k in range(net.styles)]
    return load_net(net, device)


def mix_weights(mix: str | Sequence[float], styles: int) -> torch.Tensor:
    """``"0.3,0.7"`` or [0.3, 0.7] -> (S,) weights normalised to sum 1."""
    try:
        values = [float(v) for v in (mix.split(",") if isinstance(mix, str) else mix)]
    except ValueError:
        raise SynthvizError(f"cannot read --mix '{mix}'; write one weight per style like 0.3,0.7") from None
    if not all(math.isfinite(v) for v in values):
        raise BadValue(f"--mix {','.join(f'{v:g}' for v in values)}: the mixing weights must be finite numbers; "
                       "write one weight per style like 0.3,0.7")
    if len(values) != styles:
        raise SynthvizError(f"{len(values)} mixing weight(s) for a network of {styles} style(s); give one weight per style")
    if any(v < 0 for v in values) or sum(values) <= 0:
        raise SynthvizError(f"mixing weights {values} must be non-negative with a positive sum")
    return torch.tensor(values) / sum(values)


def style_choices(net: TransformNet, style: int | Sequence[int] = 0,
                  mix: str | Sequence[float] | None = None) -> list[int | torch.Tensor]:
    """What to paint with: a list of style indices, or one mixture (S,) when ``mix`` is given."""
    if mix is not None:
        return [mix_weights(mix, net.styles)]
    styles = [style] if isinstance(style, int) else [int(s) for s in style]
    for s in styles:
        if not 0 <= s < net.styles:
            raise SynthvizError(f"style {s} is out of range; this network holds styles 0 to {net.styles - 1}")
    return styles


def combine_unmasked(choices: Sequence[int | torch.Tensor], styles: int,
                     masks: Sequence[torch.Tensor] | None) -> list[int | torch.Tensor]:
    """Several style indices and no masks: one mixture (S,) of them with equal weights, as ``--mix``
    would give, with a note saying so (without masks there is nowhere to put each style apart)."""
    if masks is not None or len(choices) < 2:
        return list(choices)
    weights = torch.zeros(styles)
    for c in choices:
        weights[c] += 1 / len(choices)
    as_mix = ",".join(f"{float(v):.3g}" for v in weights)
    warnings.warn(f"{len(choices)} styles ({', '.join(map(str, choices))}) and no --mask: they are mixed with equal "
                  f"weights over the whole image (as --mix {as_mix} would); give one --mask per --style to paint "
                  "each in its own region", stacklevel=3)
    return [weights]


def choice_label(choices: Sequence[int | torch.Tensor], names: Sequence[str]) -> str:
    """``mix 0.5,0.5`` for a mixture, else the style names joined by `` + ``."""
    if len(choices) == 1 and isinstance(choices[0], torch.Tensor):
        return "mix " + ",".join(f"{float(v):.2g}" for v in choices[0])
    return " + ".join(names[c] for c in choices)


@torch.no_grad()
def apply_net(net: TransformNet, images: torch.Tensor, choices: Sequence[int | torch.Tensor],
              masks: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
    """Stylise (B, 3, H, W) in [0, 1] -> (B, 3, H, W) on the CPU.

    Without masks the first choice paints the whole image; with masks (one (1, 1, H, W) per
    choice) each choice paints its region and the content shows where no mask is set."""
    dev = net.out[1].weight.device
    x = images.to(dev)
    if masks is None:
        if len(choices) != 1:  # see combine_unmasked
            raise SynthvizError(f"{len(choices)} styles need one mask each; give one --mask per --style or a --mix")
        return net(x, choices[0]).cpu()
    if len(masks) != len(choices):
        raise SynthvizError(f"{len(masks)} mask(s) for {len(choices)} style(s); give one --style per --mask")
    return composite([net(x, c) for c in choices], masks, x).cpu()


def input_kind(path: str | os.PathLike) -> str:
    """``folder``, ``video`` or ``image`` by what ``path`` is (a GIF is a video)."""
    path = Path(path)
    if path.is_dir():
        return "folder"
    if not path.exists():
        raise SynthvizError(f"input not found: {path}; pass an image, a folder of images or a video")
    return "video" if path.suffix.lower() in VIDEO_SUFFIXES else "image"


def folder_images(folder: str | os.PathLike) -> list[Path]:
    """The image files of ``folder`` (not its sub-folders), sorted; an error when there are none."""
    return list_images(folder)


def paint_masks(choices: Sequence, image: torch.Tensor, *, masks=None, mask_from_saliency: bool = False,
                model=DEFAULT_MODEL, saliency_method: str = "gradcam", threshold: float = 0.5,
                grabcut: bool = False, device: str | None = None) -> list[torch.Tensor] | None:
    """One (1, 1, H, W) mask per choice for ``image`` (1, 3, H, W): ``masks`` (images or tensors, resized
    to the image), or where ``model`` looks (its saliency, thresholded); None: no masks."""
    if masks is not None and mask_from_saliency:
        raise SynthvizError("give masks or mask_from_saliency, not both")
    if mask_from_saliency:
        if len(choices) != 1:
            raise SynthvizError("a saliency mask takes one style; pass a single --style")
        return [saliency_mask(load_model(model, device=device), image, method=saliency_method,
                              threshold=threshold, grabcut=grabcut)]
    if masks is not None:
        return load_masks(masks, len(choices), tuple(image.shape[-2:]))
    return None


def stylize_image(net: TransformNet, names: Sequence[str], image: torch.Tensor, *, style: int | Sequence[int] = 0,
                  mix: str | Sequence[float] | None = None, **mask_options) -> Result:
    """Paint ``image`` (1, 3, H, W) in [0, 1] with a loaded network (see :func:`get_net`) and its
    style ``names``; ``mask_options`` go to :func:`paint_masks`. The Result of the ``stylize`` technique:
    ``images`` (1, 3, H, W); with masks the figure is content | mask | output."""
    choices = style_choices(net, style, mix)
    mask_list = paint_masks(choices, image, **mask_options)
    choices = combine_unmasked(choices, net.styles, mask_list)
    t0 = time.perf_counter()
    y = apply_net(net, image, choices, mask_list)
    seconds = time.perf_counter() - t0
    label = choice_label(choices, names)
    figure = coverage = None
    if mask_list is not None:
        coverage = torch.stack(mask_list).sum(0).clamp(max=1)
        figure = make_grid(torch.cat([image, resize(coverage.expand(1, 3, -1, -1), tuple(image.shape[-2:])), y]),
                           ["content", "mask", label], ncol=3)
    info = {"styles": list(names), "style": [c if isinstance(c, int) else c.tolist() for c in choices],
            "seconds": seconds, "size": list(image.shape[-2:]),
            "mask_coverage": None if coverage is None else float(coverage.mean()),
            "report": f"stylized {image.shape[-1]}x{image.shape[-2]} with {label} in {seconds * 1000:.0f} ms"}
    return Result(images=y, figure=figure, labels=[label], info=info, technique="stylize", objective=label)


class FolderInterrupted(KeyboardInterrupt):
    """Ctrl-C while stylising a folder: ``paths`` the images written so far (each whole), of ``total``, into ``out``."""

    def __init__(self, paths: list[Path], total: int, out: Path):
        super().__init__(f"interrupted after {len(paths)} of {total} image(s)")
        self.paths, self.total, self.out = paths, total, out


def check_folder_out(folder: str | os.PathLike, out: str | os.PathLike) -> Path:
    """``out`` as a folder for the stylised copies of ``folder``'s images: refused when it is ``folder``
    itself or inside it (the photos would be replaced, or mixed with their copies), overwrite or not."""
    out = Path(out)
    if out.suffix:
        raise SynthvizError(f"--out {out} must be a folder when the input is a folder")
    source, target = Path(folder).resolve(), out.resolve()
    if target == source or source in target.parents:
        where = "is the input folder" if target == source else f"is inside the input folder {folder}"
        raise BadValue(f"--out {out} {where}: the stylised images would replace or join the photos; "
                       f"choose a folder outside {folder}")
    return out


def stylize_folder(net: NetLike, folder: str | os.PathLike, out: str | os.PathLike, *, size: int | None = None,
                   overwrite: bool = False, model=DEFAULT_MODEL, device: str | None = None,
                   **options) -> list[Path]:
    """Paint every image of ``folder`` into the folder ``out`` (not ``folder`` nor inside it) as STEM.png
    (longer side ``size`` first, default as it is); the network and the saliency model are loaded once.
    ``options`` are those of :func:`stylize_image`. Returns the paths written, in order. A re-run
    resumes: an image whose STEM.png is already in ``out`` is kept and not painted again (a note
    says how many), unless ``overwrite``. Ctrl-C raises :class:`FolderInterrupted`."""
    out = check_folder_out(folder, out)
    files = folder_images(folder)
    done = [f for f in files if (out / f"{f.stem}.png").is_file()] if not overwrite else []
    if done:
        warnings.warn(f"kept {len(done)} image(s) already stylized in {out} (a re-run resumes); "
                      "--overwrite paints them again", stacklevel=2)
        files = [f for f in files if f not in done]
        if not files:
            return []
    transform, names = get_net(net, device)
    style_choices(transform, options.get("style", 0), options.get("mix"))  # a bad --style/--mix fails first
    if options.get("mask_from_saliency"):
        model = load_model(model, device=device)
    paths, skipped = [], []
    try:
        for f, image in read_images(files, skipped=skipped):  # unreadable files are skipped and listed
            result = stylize_image(transform, names, as_image(image, size, "image"), model=model, device=device,
                                   **options)
            paths.append(save_image(result.images[0], out / f"{f.stem}.png", overwrite))
    except KeyboardInterrupt:
        raise FolderInterrupted(paths, len(files), out) from None
    if skipped and not paths:
        raise SynthvizError(f"no image in {folder} could be read: {skipped_note(skipped)}; use PNG or JPEG files")
    if skipped:
        warnings.warn(skipped_note(skipped), stacklevel=2)
    return paths
