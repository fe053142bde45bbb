"""DeepDream (Mordvintsev, Olah & Tyka 2015): amplify what a layer sees in a photo.

Recipe per octave (one :func:`~synthviz.engine.render` call each): pixels initialised from the
octave's base image plus the detail dreamed so far; ``layer_amplify`` (mean squared activation)
or ``guided_dream`` (features matching a guide image); steps normalised by the mean absolute
gradient (``meanabs``); random roll jitter. Octaves run from small to full size and carry only
the *detail* (dreamed image minus its octave base) up to the next scale, as in the original
notebook, so the photo itself is never re-blurred.

Large photos: when an octave is larger than ``tile``, the gradient is computed tile by tile
(``render(tile=...)``: memory bounded by a tile) after a random roll of up to a tile, so tile
borders move at every step and leave no seams.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..engine import render
from ..errors import SynthvizError
from ..io import resize, as_image
from ..layers import LOGITS, Tap, check_unit, default_layer
from ..models import DEFAULT_MODEL, Model, ModelLike, load_model
from ..objectives import Objective, guided_dream, layer_amplify
from ..params import PixelImage
from ..transforms import roll
from ..result import Result
from .registry import register_technique
from ..checks import finite, non_negative, positive
from ..cost import check_size
from .common import ImageLike, require

MIN_OCTAVE = 64  # smaller octaves carry too little to dream on
GUIDE_SIZE = 224  # the guide is read at the network's native scale
VIDEO_SIZE = 1024  # video frames are kept at most this large (longer side): a 4096 px dream stays light


def tile_size(h: int, w: int, tile: int) -> int:
    """A tile side near ``tile`` (down to 3/4 of it) that leaves no sliver tile at the right or
    bottom edge (a few-pixel tile would see almost no context)."""
    def sliver(t: int) -> int:
        return min((d % t or t) for d in (h, w))

    best = max(range(tile, max(MIN_OCTAVE, 3 * tile // 4) - 1, -1), key=lambda t: (min(sliver(t), MIN_OCTAVE), t))
    return best


@torch.no_grad()
def layer_rms(model: Model, image: torch.Tensor, layer: str, tile: int | None = None) -> float:
    """Root mean square activation of ``layer`` on ``image`` (1, 3, H, W), tile by tile when it is
    larger than ``tile`` (bounded memory, like the dream itself)."""
    h, w = image.shape[-2:]
    # the same tiles as the dream itself: near ``tile`` and with no sliver at the edges (an 8 px
    # strip is below the model's minimum size)
    t = tile_size(h, w, tile) if tile and max(h, w) > tile else max(h, w)
    total, count = 0.0, 0
    with Tap(model, [layer]) as tap:
        for top in range(0, image.shape[-2], t):
            for left in range(0, image.shape[-1], t):
                act = tap(image[..., top : top + t, left : left + t].to(model.device))[layer]
                total, count = total + float(act.pow(2).sum()), count + act.numel()
    return (total / max(count, 1)) ** 0.5


def zoom_in(image: torch.Tensor, zoom: float) -> torch.Tensor:
    """Crop the centre 1/``zoom`` of (1, 3, H, W) and scale it back to (H, W)."""
    h, w = image.shape[-2:]
    ch, cw = max(8, round(h / zoom)), max(8, round(w / zoom))
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = image[..., top : top + ch, left : left + cw]
    return F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)


@register_technique("dream", example={"image": "skimage:chelsea", "size": 96, "octaves": 2, "steps": 2})
def dream(model: ModelLike = DEFAULT_MODEL, image: ImageLike | None = None, *, layer: str | None = None,
          channel: int | None = None, guide: torch.Tensor | str | os.PathLike | None = None,
          weights: str = "default", size: int | None = None, octaves: int = 4, octave_scale: float = 1.4,
          steps: int = 10, lr: float = 1.5 / 255, jitter: int = 32, tile: int | None = 512, zoom_frames: int = 0,
          zoom: float = 1.05, frame_octaves: int = 1, seed: int | None = 0, device: str | None = None,
          progress: bool | str = False, frame_every: int = 0) -> Result:
    """Dream on ``image``: amplify what ``layer`` (or one ``channel`` of it) sees in it.

    Args:
        model: a model name or a loaded :class:`Model`.
        image: a path or a (1, 3, H, W) tensor in [0, 1]; ``size``: resize its longer side first
            (default: keep the photo's size). The output has the same size.
        layer: the layer to amplify (default: the model's ``mid`` layer); ``channel``: only one
            of its channels.
        guide: an image (path or tensor): amplify the features that best match the guide's.
        octaves, octave_scale: the number of scales and the ratio between them (4 and 1.4).
        steps, lr: steps per octave and the mean absolute pixel change per step (1.5/255 as
            the original's 1.5 on a 0-255 image).
        jitter: random roll of up to this many pixels per step.
        tile: compute gradients in tiles of about this side (px) when an octave is larger;
            ``None``/0: never tile.
        zoom_frames: make a zoom video of this many frames: each frame zooms ``zoom`` times
            into the previous one and dreams on it with ``frame_octaves`` octaves.
        frame_every: keep a frame every k steps of every octave. Video frames (zoom or progress)
            have the output's size, at most 1024 px on the longer side.

    Returns:
        A :class:`~synthviz.result.Result`: ``images`` (1, 3, H, W) the dream, ``history``
        the objective of the last octave, ``frames`` the zoom video (or the progress frames).
        ``info`` holds ``layer``, ``channel``, ``guided``, ``octave_sizes``, ``tile`` (the tile
        side used at full size, or None), ``rms_before``/``rms_after`` (the layer's RMS
        activation on the input and on the dream) and ``report``.
    """
    _check_options(octaves, steps, lr, octave_scale, zoom, jitter, tile, zoom_frames, frame_octaves)
    if guide is not None and channel is not None:
        raise SynthvizError("a guided dream amplifies whole features: give channel or guide, not both")
    m = load_model(model, weights, device)
    layer = layer or default_layer(m, "mid")
    if layer == LOGITS:
        raise SynthvizError("DeepDream needs a convolutional layer, not the logits; pick one with `synthviz layers`")
    x0 = as_image(require(image, "image"), size).to(m.device)
    h0, w0 = x0.shape[-2:]
    # memory is bounded by a tile (plus the image and its octaves), not by the whole photo
    check_size(m, min(h0, w0), pixels=min(h0 * w0, tile * tile) + 8 * h0 * w0 if tile else h0 * w0)
    if channel is not None:
        check_unit(m, layer, channel, min(min(x0.shape[-2:]), 224))
    objective = _objective(m, layer, channel, guide)
    k = min(1.0, VIDEO_SIZE / max(h0, w0))
    frame_size = (max(1, round(h0 * k)), max(1, round(w0 * k)))
    dreamer = _Dreamer(m, objective, octave_scale, steps, lr, jitter, tile or None, progress, frame_every, frame_size)
    out, result, frames, octave_sizes = dreamer.run(x0, octaves, seed, "")
    if zoom_frames:
        frames = _zoom_video(dreamer, out, zoom_frames, zoom, frame_octaves, seed)
    _describe(result, dreamer, x0, out, frames, octave_sizes, layer, channel, guide is not None)
    return result


def _check_options(octaves: int, steps: int, lr: float, octave_scale: float, zoom: float, jitter: int,
                   tile: int | None, zoom_frames: int, frame_octaves: int) -> None:
    for name, v in (("octaves", octaves), ("steps", steps)):
        positive(name, v, integer=True)
    positive("lr", lr)
    finite("octave_scale", octave_scale)
    finite("zoom", zoom)
    non_negative("jitter", jitter, integer=True)
    non_negative("tile", tile, integer=True)
    if octave_scale <= 1:
        raise SynthvizError(f"octave_scale must be above 1 (e.g. 1.4), not {octave_scale}")
    if jitter < 0 or zoom_frames < 0 or frame_octaves < 1:
        raise SynthvizError("jitter and zoom_frames must be zero or more and frame_octaves at least 1")
    if zoom < 1:
        raise SynthvizError(f"zoom must be 1 or more (1.05 zooms in by 5% per frame), not {zoom}")
    if tile is not None and tile and tile < MIN_OCTAVE:
        raise SynthvizError(f"tile {tile} is too small: use at least {MIN_OCTAVE} px, or 0 for no tiling")


def _objective(m: Model, layer: str, channel: int | None, guide: torch.Tensor | str | os.PathLike | None):
    """Amplify ``layer`` (or one channel), or, with a guide, the features that match the guide's."""
    if guide is None:
        return layer_amplify(layer, channel)
    g = as_image(guide, GUIDE_SIZE, what="guide image").to(m.device)
    with torch.no_grad(), Tap(m, [layer]) as tap:
        return guided_dream(layer, tap(g)[layer])


@dataclass
class _Dreamer:
    """One dream over octaves, each octave one :func:`~synthviz.engine.render` call; progress frames
    are resized to ``frame_size``."""

    model: Model
    objective: Objective
    octave_scale: float
    steps: int
    lr: float
    jitter: int
    tile: int | None
    progress: bool | str
    frame_every: int
    frame_size: tuple[int, int]

    def run(self, start: torch.Tensor, n_octaves: int, seed0: int | None, label: str):
        """Dream ``start`` (1, 3, H, W) with ``n_octaves`` octaves carrying the detail; returns
        (image, the last octave's result, progress frames, octave sizes)."""
        bases = self._octave_bases(start, n_octaves)
        detail = torch.zeros_like(bases[-1])
        frames: list[torch.Tensor] = []
        for i, base in enumerate(reversed(bases)):
            h, w = base.shape[-2:]
            if detail.shape[-2:] != (h, w):
                detail = F.interpolate(detail, size=(h, w), mode="bilinear", align_corners=False)
            r = self._octave(base + detail, None if seed0 is None else seed0 + i,
                             f"{label}octave {i + 1}/{len(bases)}" if self.progress else False)
            detail = r.images.to(self.model.device) - base
            frames += [resize(f, self.frame_size) for f in r.frames]
        return (base + detail).clamp(0, 1), r, frames, [tuple(b.shape[-2:]) for b in reversed(bases)]

    def _octave_bases(self, start: torch.Tensor, n_octaves: int) -> list[torch.Tensor]:
        """``start`` and its smaller versions, each ``octave_scale`` times smaller, none below MIN_OCTAVE."""
        bases = [start]
        for _ in range(n_octaves - 1):
            h, w = bases[-1].shape[-2:]
            if min(h, w) / self.octave_scale < MIN_OCTAVE:
                break
            bases.append(resize(bases[-1], (round(h / self.octave_scale), round(w / self.octave_scale))))
        return bases

    def _octave(self, init: torch.Tensor, seed: int | None, progress: bool | str) -> Result:
        """Render one octave from ``init`` (1, 3, h, w), tile by tile when it is larger than a tile."""
        h, w = init.shape[-2:]
        tiled = self.tile is not None and max(h, w) > self.tile
        t = tile_size(h, w, self.tile) if tiled else None
        shift = roll(max(self.jitter, t)) if tiled else roll(self.jitter)  # a roll of up to a tile hides tile borders
        return render(self.model, self.objective, PixelImage(1, h, w, init=init), transforms=shift,
                      optimizer="meanabs", lr=self.lr, steps=self.steps, tile=t, seed=seed, progress=progress,
                      frame_every=self.frame_every)


def _zoom_video(dreamer: _Dreamer, out: torch.Tensor, zoom_frames: int, zoom: float, frame_octaves: int,
                seed: int | None) -> list[torch.Tensor]:
    """``zoom_frames`` frames: the dream ``out``, then each frame zoomed into and dreamed on again."""
    frames = [resize(out, dreamer.frame_size).cpu()]
    frame = out
    for n in range(1, zoom_frames):
        frame, _, _, _ = dreamer.run(zoom_in(frame, zoom), frame_octaves, None if seed is None else seed + 1000 * n,
                                     f"frame {n + 1}/{zoom_frames} ")
        frames.append(resize(frame, dreamer.frame_size).cpu())
    return frames


def _describe(result: Result, dreamer: _Dreamer, x0: torch.Tensor, out: torch.Tensor, frames: list[torch.Tensor],
              octave_sizes: list[tuple[int, int]], layer: str, channel: int | None, guided: bool) -> None:
    """Fill ``result`` with the dream ``out``, its frames, the layer's RMS before and after, and the report."""
    m, tile, steps = dreamer.model, dreamer.tile, dreamer.steps
    full_tile = tile_size(*x0.shape[-2:], tile) if tile is not None and max(x0.shape[-2:]) > tile else None
    before, after = layer_rms(m, x0, layer, tile), layer_rms(m, out, layer, tile)
    result.images = out.cpu()
    result.frames = [f.cpu() for f in frames]
    result.objective = dreamer.objective.name
    unit = layer if channel is None else f"{layer}:{channel}"
    report = (f"{'guided ' if guided else ''}dream on {unit}, {x0.shape[-1]}x{x0.shape[-2]} px, "
              f"{len(octave_sizes)} octave(s) x {steps} steps{f', tiles of {full_tile} px' if full_tile else ''}: "
              f"layer RMS activation {before:.3g} -> {after:.3g}")
    result.labels = [f"{'guided ' if guided else ''}dream {unit}"]
    result.scores = torch.tensor([after / max(before, 1e-12)])  # how much the layer was amplified
    result.info.update(model=m.name, layer=layer, channel=channel, guided=guided, tile=full_tile,
                       octave_sizes=octave_sizes, rms_before=before, rms_after=after, report=report)
