"""Video: frames in and out through the io layer (the source's frame rate; a file that ends early is
reported, see :class:`synthviz.io.VideoFrames`), optical flow
by OpenCV's Farneback method (no weights to download), and temporal consistency.

* :func:`stylize_video`: a style network frame by frame, each output blended with the previous
  output warped by the flow where the flow is reliable (flow-guided blending).
* :func:`temporal_error` (Lai et al. 2018): the mean squared difference between each output frame
  and the previous output warped by the flow of the *input* clip, on the pixels where forward and
  backward flow agree. A frozen output would score well on that alone, so it also reports the
  output's change without warping on the same pixels (``change``) and the ratio of the two
  (``relative``: 0 for a perfectly flow-following output, about 1 or more for flicker, infinite for a frozen one).

The optimisation-based ``style`` on a video lives in :mod:`.video_style`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import SynthvizError
from ..io import read_video  # frames in: the io layer counts them and reports a file that ends early


def write_video(frames: torch.Tensor | Sequence[torch.Tensor], path: str | os.PathLike, fps: float = 12.0,
                overwrite: bool = False):
    """Write (T, 3, H, W) frames as a GIF or MP4 at ``fps``; returns the path written."""
    from ..io import save_video

    return save_video(list(frames), path, fps=fps, overwrite=overwrite)


def _grey(image: torch.Tensor) -> np.ndarray:
    from ..io import to_uint8

    import cv2

    return cv2.cvtColor(to_uint8(image), cv2.COLOR_RGB2GRAY)


def flow(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Farneback optical flow (H, W, 2) (x, y displacements) such that source(p) ≈ target(p + flow(p)).
    Both (1, 3, H, W) or (3, H, W)."""
    import cv2

    f = cv2.calcOpticalFlowFarneback(_grey(source), _grey(target), None, 0.5, 3, 15, 3, 5, 1.2, 0)
    return torch.from_numpy(f)


def warp(image: torch.Tensor, flow_: torch.Tensor) -> torch.Tensor:
    """out(p) = image(p + flow(p)), bilinear, border replicated. image (B, C, H, W), flow (H, W, 2)."""
    b, _, h, w = image.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    fx, fy = flow_[..., 0].float(), flow_[..., 1].float()
    grid = torch.stack([(xs + fx) / max(w - 1, 1) * 2 - 1, (ys + fy) / max(h - 1, 1) * 2 - 1], -1)
    return F.grid_sample(image, grid[None].expand(b, -1, -1, -1).to(image), mode="bilinear",
                         padding_mode="border", align_corners=True)


def reliable(forward: torch.Tensor, backward: torch.Tensor) -> torch.Tensor:
    """Where a flow can be trusted (Ruder et al. 2016): (H, W) float of 0/1.

    forward: flow from frame t to t−1 (H, W, 2); backward: from t−1 to t. A pixel is reliable when
    following the forward flow and then the backward flow comes back (|f + b̃|² ≤ 0.01 (|f|² + |b̃|²) + 0.5)
    and the forward flow stays inside the frame."""
    h, w = forward.shape[:2]
    back = warp(backward.permute(2, 0, 1)[None], forward)[0].permute(1, 2, 0)
    ok = (forward + back).pow(2).sum(-1) <= 0.01 * (forward.pow(2).sum(-1) + back.pow(2).sum(-1)) + 0.5
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    x2, y2 = xs + forward[..., 0], ys + forward[..., 1]
    inside = (x2 >= 0) & (x2 <= w - 1) & (y2 >= 0) & (y2 <= h - 1)
    return (ok & inside).float()


def clip_flows(frames: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """For t = 1..T−1: (flow from frame t to t−1, its reliability mask (H, W))."""
    out = []
    for t in range(1, len(frames)):
        fwd, bwd = flow(frames[t], frames[t - 1]), flow(frames[t - 1], frames[t])
        out.append((fwd, reliable(fwd, bwd)))
    return out


@torch.no_grad()
def temporal_error(outputs: torch.Tensor, inputs: torch.Tensor,
                   flows: list[tuple[torch.Tensor, torch.Tensor]] | None = None) -> dict[str, float]:
    """Lai et al. 2018's warping error of ``outputs`` (T, 3, H, W), flows from ``inputs`` (T, 3, H, W).

    Returns ``warp_error`` (mean over t of Σ M‖O_t − warp(O_{t−1})‖² / Σ M), ``change`` (the same
    without warping), ``relative`` (their ratio) and ``reliable`` (the fraction of pixels used)."""
    if len(outputs) != len(inputs) or len(outputs) < 2:
        raise SynthvizError("temporal error needs two or more output frames, one per input frame")
    flows = flows if flows is not None else clip_flows(inputs)
    errs, changes, used = [], [], []
    for t, (fwd, mask) in enumerate(flows, start=1):
        cur, prev = outputs[t : t + 1].float().cpu(), outputs[t - 1 : t].float().cpu()
        n = mask.sum().clamp_min(1)
        errs.append(float(((cur - warp(prev, fwd)).pow(2).sum(1)[0] * mask).sum() / n))
        changes.append(float(((cur - prev).pow(2).sum(1)[0] * mask).sum() / n))
        used.append(float(mask.mean()))
    err, change = float(np.mean(errs)), float(np.mean(changes))
    return {"warp_error": err, "change": change, "relative": err / change if change > 0 else float("inf"),
            "reliable": float(np.mean(used))}


@torch.no_grad()
def stylize_video(net, frames: torch.Tensor, choices: Sequence, *, blend: float = 0.7,
                  masks: Sequence[torch.Tensor] | None = None,
                  flows: list[tuple[torch.Tensor, torch.Tensor]] | None = None) -> torch.Tensor:
    """Stylise (T, 3, H, W) frame by frame with flow-guided blending: where the flow from frame t to
    t−1 is reliable, out_t = blend · warp(out_{t−1}) + (1 − blend) · net(frame_t). ``blend=0``:
    independent frames. Returns (T, 3, H, W) on the CPU."""
    from .stylize import apply_net

    if not 0 <= blend < 1:
        raise SynthvizError(f"blend must be in [0, 1), not {blend}")
    flows = flows if flows is not None or blend == 0 else clip_flows(frames)
    out = []
    for t in range(len(frames)):
        y = apply_net(net, frames[t : t + 1], choices, masks)
        if t and blend:
            fwd, mask = flows[t - 1]
            m = mask[None, None] * blend
            y = m * warp(out[-1], fwd) + (1 - m) * y
        out.append(y)
    return torch.cat(out)


def stylize_video_file(net, source: str | os.PathLike, out: str | os.PathLike, *, style=0, mix=None,
                       blend: float = 0.7, size: int | None = None, overwrite: bool = False,
                       device: str | None = None, **mask_options):
    """Paint the video ``source`` with a style network (:func:`stylize_video`) and write it to ``out``
    at the source's frame rate. ``size``: resize the frames' longer side first; ``mask_options``
    (see :func:`~synthviz.faststyle.stylize.paint_masks`): masks for every frame, or the saliency
    of the first frame for the whole clip. ``out``, the network and the styles are checked before any
    work, and the output's name is claimed then (:func:`~synthviz.io.claim_file`: a second run into the
    same ``out`` at once writes a free name beside it, never over this one).

    Returns a :class:`~synthviz.result.Result`: ``images`` the (T, 3, H, W) styled frames; ``info``
    the ``path`` written, ``fps``, ``frames``, ``temporal`` (:func:`temporal_error`, None for one frame)."""
    from ..io import VIDEO_SUFFIXES, check_writable, claim_file, resize
    from ..result import Result
    from .stylize import combine_unmasked, get_net, paint_masks, style_choices

    check_writable(out, VIDEO_SUFFIXES, inputs=[source])  # before any work
    if not 0 <= blend < 1:
        raise SynthvizError(f"--blend must be in [0, 1), not {blend}")
    model, names = get_net(net, device)
    choices = style_choices(model, style, mix)
    with claim_file(out, overwrite) as claim:
        frames, fps = read_video(source)
        if size:
            frames = resize(frames, size)
        masks = paint_masks(choices, frames[:1], device=device, **mask_options)
        choices = combine_unmasked(choices, model.styles, masks)
        styled = stylize_video(model, frames, choices, blend=blend, masks=masks)
        path = write_video(styled, claim.path, fps=fps, overwrite=True)
    temporal = temporal_error(styled, frames) if len(frames) > 1 else None
    report = f"stylized {len(frames)} frame(s) at {fps:.3g} fps" + (
        f"; temporal error {temporal['warp_error']:.3g}" if temporal else "")
    return Result(images=styled, technique="stylize_video", objective="stylize",
                  labels=[f"frame {t}" for t in range(len(styled))],
                  info={"path": str(path), "fps": fps, "frames": len(frames), "styles": names,
                        "temporal": temporal, "report": report})
