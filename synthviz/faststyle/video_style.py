"""The optimisation-based ``style`` on a video (Ruder et al. 2016): every frame is rendered with the
``style`` technique's objectives (relative content error + style statistics + TV, L-BFGS on pixels),
frame t starting from frame t−1's result warped by the optical flow, plus a temporal loss that ties
it to that warped result on the pixels where forward and backward flow agree."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..checks import non_negative, positive
from ..engine import render
from ..errors import SynthvizError
from ..io import VIDEO_SUFFIXES, as_image, check_writable, claim_file, resize
from ..layers import capture
from ..models import load_model
from ..objectives import Context, Objective, feature_match
from ..params import PixelImage
from ..result import Result
from .loss import (blend_weights, check_stat, content_layer, layer_weights, style_layers, style_objective,
                   style_targets, total_variation)
from .masks import note_unplaced_styles
from .video import clip_flows, read_video, temporal_error, warp, write_video


def temporal_loss(previous: torch.Tensor, mask: torch.Tensor, weight: float) -> Objective:
    """Minus ``weight`` × the mean squared difference to ``previous`` (1, 3, H, W) where ``mask`` (H, W) is 1."""
    m = mask[None, None]
    n = float(m.sum().clamp_min(1)) * 3

    def fn(c: Context) -> torch.Tensor:
        return -weight * (m.to(c.image) * (c.image - previous.to(c.image)).pow(2)).flatten(1).sum(1) / n

    return Objective(fn, f"{weight:g}*temporal", [])


def style_video(model="efficientnet_lite0", frames: torch.Tensor | None = None,
                styles: torch.Tensor | str | Sequence[torch.Tensor | str] = (), *, size: int | None = None, steps: int = 100,
                later_steps: int | None = None, content_weight: float = 1.0, style_weight: float = 3.0,
                tv_weight: float = 1.0, temporal_weight: float = 100.0, stat: str = "gram",
                blend: str | Sequence[float] | None = None, weights: str = "default", seed: int | None = 0,
                device: str | None = None, progress: bool = False) -> Result:
    """Style every frame of ``frames`` (T, 3, H, W) with ``styles`` (images blended by their statistics,
    one ``blend`` weight each, default equal; several styles give a note saying so).

    ``temporal_weight=0``: independent frames, each started from its own content; otherwise frame t
    starts from the warped previous result and the temporal loss is added. ``later_steps``: steps for frames after
    the first (default half of ``steps``). Returns a :class:`Result` whose images are the frames;
    ``info["temporal"]`` is :func:`~synthviz.faststyle.video.temporal_error` of the output.
    """
    if frames is None or frames.dim() != 4 or len(frames) < 1:
        raise SynthvizError("frames must be a (T, 3, H, W) tensor in [0, 1]")
    _check_numbers(steps, later_steps, size, dict(content_weight=content_weight, style_weight=style_weight,
                                                  tv_weight=tv_weight, temporal_weight=temporal_weight))
    check_stat(stat)
    style_list = list(styles) if isinstance(styles, (list, tuple)) else [styles]
    mix = blend_weights(blend, len(style_list))
    note_unplaced_styles(mix)
    m = load_model(model, weights, device)
    frames = resize(frames.float(), size) if size else frames.float()
    style_imgs = [resize(as_image(s, what="style image"), max(frames.shape[-2:])).to(m.device) for s in style_list]
    s_layers, c_layer = style_layers(m), content_layer(m)
    style_obj = style_objective(style_targets(m, style_imgs, mix, s_layers, stat),
                                layer_weights(None, s_layers), stat)
    flows = clip_flows(frames) if len(frames) > 1 else []
    later_steps = later_steps or max(1, steps // 2)
    out: list[torch.Tensor] = []
    for t in range(len(frames)):
        x = frames[t : t + 1].to(m.device)
        objective = content_weight * feature_match(c_layer, capture(m, x, [c_layer])[c_layer]) + style_weight * style_obj
        if tv_weight:
            objective = objective + total_variation(tv_weight)
        init = x
        if t and temporal_weight:
            fwd, mask = flows[t - 1]
            previous = warp(out[-1], fwd)
            init = mask[None, None] * previous + (1 - mask[None, None]) * frames[t : t + 1]
            objective = objective + temporal_loss(previous, mask, temporal_weight)
        param = PixelImage(1, *x.shape[-2:], init=init.cpu().contiguous())
        r = render(m, objective, param, optimizer="lbfgs", lr=1.0, steps=steps if t == 0 else later_steps,
                   seed=seed, progress=f"frame {t + 1}/{len(frames)}" if progress else False)
        out.append(r.images.cpu())
    images = torch.cat(out)
    info = {"model": m.name, "frames": len(images), "temporal_weight": temporal_weight,
            "temporal": temporal_error(images, frames, flows) if len(images) > 1 else {}}
    return Result(images=images, info=info, technique="style_video", objective="style + temporal",
                  labels=[f"frame {t}" for t in range(len(images))])


def _check_numbers(steps: int, later_steps: int | None, size: int | None, weights: dict[str, float]) -> None:
    positive("steps", steps, integer=True)
    positive("later_steps", later_steps, integer=True)
    positive("size", size, integer=True)
    for name, value in weights.items():
        non_negative(name, value)


def style_video_file(model, source, styles, out, *, overwrite: bool = False, **options) -> Result:
    """``synthviz style VIDEO STYLE --out OUT.mp4``: read ``source``, :func:`style_video` its frames with
    ``styles`` (``options`` are that function's), write ``out`` at the source's frame rate (the path is
    checked before any work). ``info`` gains ``path``, ``fps`` and a ``report`` line."""
    style_list = list(styles) if isinstance(styles, (list, tuple)) else [styles]
    check_writable(out, VIDEO_SUFFIXES, inputs=[source, *[s for s in style_list if not isinstance(s, torch.Tensor)]])
    with claim_file(out, overwrite) as claim:  # the name is ours from now on: a second run at once takes another
        frames, fps = read_video(source)
        result = style_video(model, frames, style_list, **options)
        temporal = result.info["temporal"]
        path = write_video(result.images, claim.path, fps=fps, overwrite=True)
    result.info.update(path=str(path), fps=fps, report=f"styled {len(frames)} frame(s) at {fps:.3g} fps" + (
        f"; temporal error {temporal['warp_error']:.3g}" if temporal else ""))
    return result

