"""Targets of detection and segmentation outputs.

* :func:`box`: a detector's output (a list of per-image dicts ``boxes`` (N, 4), ``labels`` (N,),
  ``scores`` (N,)) -> the detection of class K with the highest IoU with a box, if that IoU is
  above 0.5, scored IoU + confidence (pytorch-grad-cam 1.5.7's ``FasterRCNNBoxScoreTarget`` for
  one box; it takes the highest-IoU detection of any class and scores 0 when its class is not
  K; here the best detection *of class K* counts). No such detection: 0.
* :func:`detections`: one :func:`box` target per detection of an image (above a score, of a class),
  each explained in turn; none: one line, :class:`~synthviz.errors.BadValue`.
* :func:`detection_target`: a technique's one target on a detector: a given target as it is, else
  the best detection above a score (of a class).
* :func:`segment`: class K's logits (B, K, H, W) summed over a mask, by default where K is
  predicted on the image (:func:`~synthviz.targets.in_mask` on that region).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from ..errors import BadValue
from .core import Target, main_output
from .kinds import in_mask

IOU_THRESHOLD = 0.5


def is_detections(output) -> bool:
    """True for a detector's output: a list (or tuple) of dicts with ``boxes``."""
    return isinstance(output, (list, tuple)) and len(output) > 0 and all(
        isinstance(d, dict) and "boxes" in d for d in output)


class DetectionTarget(Target):
    """``fn(one image's dict) -> ()`` applied to each image of a detector's output: (B,)."""

    def __init__(self, fn, name: str, rows: torch.Tensor | None = None):
        super().__init__(fn, name, per_image=False, rows=rows)

    def __call__(self, output) -> torch.Tensor:
        if not is_detections(output):
            raise BadValue(f"target '{self.name}' needs a detection model's output (a list of per-image dicts "
                           "with boxes, labels and scores); use a detector such as fasterrcnn_resnet50_fpn")
        return torch.stack([self.fn(d) for d in output])

    def _with_rows(self, rows: torch.Tensor) -> Target:
        return DetectionTarget(self.fn, self.name, rows)


def _box_tensor(value) -> torch.Tensor:
    """``"x1,y1,x2,y2"``, a sequence of 4 numbers or a (4,) tensor -> (4,) float, checked."""
    if isinstance(value, str):
        try:
            value = [float(v) for v in value.split(",")]
        except ValueError:
            raise BadValue(f"cannot read the box '{value}'; write it as x1,y1,x2,y2 in pixels, e.g. 10,10,100,100") from None
    t = torch.as_tensor(value, dtype=torch.float32).flatten()
    if t.numel() != 4 or not bool(torch.isfinite(t).all()) or not (t[2] > t[0] and t[3] > t[1]):
        raise BadValue(f"a box is x1,y1,x2,y2 with x2 > x1 and y2 > y1, not {value!r}")
    return t


def _best(d: dict, box: torch.Tensor, cls: int | None) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(IoU, index) of the detection of class ``cls`` (any class: None) with the highest IoU with
    ``box`` in one image's dict, or None when there is no such detection."""
    from torchvision.ops import box_iou

    boxes = d["boxes"]
    keep = torch.ones(len(boxes), dtype=torch.bool, device=boxes.device) if cls is None else d["labels"] == cls
    if not bool(keep.any()):
        return None
    index = keep.nonzero()[:, 0]
    ious = box_iou(box.to(boxes)[None], boxes[index])[0]
    best = ious.argmax()
    return ious[best], index[best]


def _corners(b: torch.Tensor) -> str:
    """``10,10,100.5,100`` (a tenth of a pixel at most)."""
    return ",".join(f"{round(v, 1):g}" for v in b.tolist())


def box(xyxy, cls: int, iou_threshold: float = IOU_THRESHOLD) -> Target:
    """The detection of class ``cls`` with the highest IoU with the box ``xyxy`` (x1, y1, x2, y2 in the
    input's pixels), if that IoU > ``iou_threshold``: IoU + its score; else 0. Per image, (B,)."""
    b = _box_tensor(xyxy)
    cls = int(cls)

    def fn(d: dict) -> torch.Tensor:
        zero = (d["scores"].sum() + d["boxes"].sum()) * 0  # on the graph, even with no detection
        found = _best(d, b, cls)
        if found is None or not bool(found[0] > iou_threshold):
            return zero
        iou, i = found
        return iou + d["scores"][i]

    corners = _corners(b)
    return DetectionTarget(fn, f"class {cls} box {corners}")


def _class_label(model, cls: int) -> str:
    name = model.class_name(cls) if getattr(model, "classes", None) else str(cls)
    return f"{cls} '{name}'" if name != str(cls) else str(cls)


def detections(model, image: torch.Tensor, xyxy=None, cls: int | None = None,
               min_score: float = 0.5) -> list[Target]:
    """The box targets to explain for one image (1, 3, H, W) in [0, 1] on a detector ``model``:
    with a box, the one target :func:`box` (class ``cls``, else the class of the detection that
    overlaps it most), checked to find a detection; without, one target per detection scoring at
    least ``min_score`` (of class ``cls`` when given), its own box and class, best first.
    No detection qualifies: one line, :class:`~synthviz.errors.BadValue`."""
    with torch.no_grad():
        out = model(image[:1].to(model.device))
    if not is_detections(out):
        raise BadValue(f"--box and --min-score need a detection model, not {getattr(model, 'name', 'this model')}; "
                       "use e.g. --model fasterrcnn_resnet50_fpn")
    d = out[0]
    if xyxy is not None:
        b = _box_tensor(xyxy)
        found = _best(d, b, cls)
        if cls is None and found is not None:
            cls = int(d["labels"][found[1]])
        if found is None or not bool(found[0] > IOU_THRESHOLD):
            what = f"of class {_class_label(model, cls)} " if cls is not None else ""
            best = f" (best IoU {float(found[0]):.2f})" if found is not None else ""
            raise BadValue(f"no detection {what}overlaps the box {_corners(b)} with "
                           f"IoU > {IOU_THRESHOLD}{best}; draw the box around a detected object or change --class")
        return [box(b, cls)]
    keep = d["scores"] >= min_score
    if cls is not None:
        keep &= d["labels"] == cls
    if not bool(keep.any()):
        what = f" of class {_class_label(model, cls)}" if cls is not None else ""
        top = f" (the best scores {float(d['scores'].max()):.3g})" if len(d["scores"]) else " (it detects nothing)"
        raise BadValue(f"no detection{what} scores {min_score:g} or more on this image{top}; lower --min-score")
    order = d["scores"][keep].argsort(descending=True)
    boxes, labels = d["boxes"][keep][order], d["labels"][keep][order]
    return [box(bb, int(k)) for bb, k in zip(boxes, labels)]


def detection_target(model, image: torch.Tensor, target=None, min_score: float = 0.5) -> Target:
    """The one box target a single-output technique (sanity, evaluate, attack-map) explains on a
    detector ``model`` for ``image`` (1, 3, H, W) in [0, 1]: a :class:`Target` (``box(...)``) as it
    is; else the best detection scoring at least ``min_score`` (of class ``target`` when it is an
    index or a name), its own box and class. None qualifies: one line, :class:`~synthviz.errors.BadValue`."""
    if isinstance(target, Target):
        return target
    cls = None if target is None else model.class_index(target)
    return detections(model, image, None, cls, min_score)[0]


def predicted_region(model, image: torch.Tensor, cls: int) -> torch.Tensor:
    """(1, h, w) float: where ``model``'s segmentation output on ``image`` (1, 3, H, W) predicts
    class ``cls`` (the argmax over classes); nowhere: one line, :class:`~synthviz.errors.BadValue`."""
    with torch.no_grad():
        out = main_output(model(image[:1].to(model.device)))
    if not isinstance(out, torch.Tensor) or out.dim() != 4:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise BadValue(f"a segmentation target needs a (B, K, H, W) output, not {shape}")
    if not 0 <= cls < out.shape[1]:
        raise BadValue(f"class {cls} is out of range: the output has {out.shape[1]} classes, use 0..{out.shape[1] - 1}")
    region = (out.argmax(1) == cls).float()
    if not bool(region.any()):
        raise BadValue(f"class {cls} is predicted nowhere on this image; give the region with --mask")
    return region


def segment(model, image: torch.Tensor, cls: int,
            mask: torch.Tensor | str | os.PathLike | Sequence | None = None) -> Target:
    """Class ``cls``'s logits summed over ``mask`` (a file or (H, W) tensor; default: where the
    model predicts ``cls`` on ``image`` (1, 3, H, W)): :func:`~synthviz.targets.in_mask`."""
    derived = mask is None
    target = in_mask(cls, predicted_region(model, image, cls) if derived else mask)
    if derived:
        target.name = f"class {cls} where predicted"
    return target
