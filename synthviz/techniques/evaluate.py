"""``synthviz.evaluate``: how far each saliency method's maps can be trusted on a model and images.

Deletion/insertion, ROAD, localisation against masks, model randomization (top layer, a middle layer,
all layers), input invariance, infidelity, max-sensitivity, Gini sparseness and the cost per image,
for each method plus the ``random`` and ``smoothgrad`` reference rows (see :mod:`synthviz.evaluation`).
"""

from __future__ import annotations

import os

import torch

from ..evaluation.ranking import rank
from ..evaluation.report import summary_figure
from ..evaluation.run import CHECKS, evaluate_images
from ..io import resize
from ..models import DEFAULT_MODEL, ModelLike
from ..result import Result, plain
from .registry import register_technique

DEFAULT_METHODS = "gradient,grad_x_input,integrated_gradients,gradcam"


@register_technique("evaluate", example={"images": "skimage:chelsea", "methods": "gradcam", "size": 48, "checks": "",
                                            "curve_steps": 2, "samples": 2})
def evaluate(model: ModelLike = DEFAULT_MODEL,
             images: torch.Tensor | str | os.PathLike | list | None = None, *, methods: str = DEFAULT_METHODS,
             masks: torch.Tensor | str | os.PathLike | dict | None = None, target=None,
             size: int | None = 128, curve_steps: int = 16, checks: str = ",".join(CHECKS), samples: int = 16,
             ig_steps: int = 32, layer: str | None = None, metrics: str | list[str] = "",
             metric_options: dict | list[str] | None = None, weights: str = "default", device: str | None = None,
             seed: int = 0, progress: bool = False, min_score: float = 0.5) -> Result:
    """Score ``methods`` (a comma list; the ``random`` and ``smoothgrad`` references are always added)
    on ``images`` (a path, a folder, a list of paths or a (B, 3, H, W) tensor in [0, 1]).

    Args:
        masks: ground truth for the pointing game and IoU: a folder of masks named like the images,
            a (B, 1, H, W) tensor or {image name: mask}.
        target: the class explained (default: each image's prediction) or any target; on a detector
            a box target (``targets.box(xyxy, K)``; default: each image's best detection scoring at
            least ``min_score``, of class ``target`` when it is a class), whose score the curves follow.
        size: longer side the images are resized to (None: as they are).
        curve_steps: chunks of the deletion/insertion curves.
        checks: comma list of the slower checks to run: road, randomization, invariance, robustness.
        samples, ig_steps, layer: SmoothGrad copies, integrated-gradients steps, Grad-CAM layer.
        metrics: registered metrics to add, one column each (Quantus names, a comma list or a list;
            :func:`synthviz.evaluation.metrics.names`); ``metric_options``: their options,
            ``{"metric.option": value}`` or ``["metric.option=value", ...]`` (``--metric-option``).

    Returns:
        A :class:`~synthviz.result.Result`: ``figure`` the maps of every method on every image with their
        deletion/insertion AUCs; ``info["rows"]`` one dict per method and image (the CSV's columns),
        ``info["summary"]`` the mean per method, ``info["ranks"]`` the methods ranked per metric with
        bootstrap 95 % intervals (the rows of ``ranks.csv``); ``images`` the photos as the model saw them;
        ``scores`` the insertion minus deletion AUC of the first method per image.
        ``info["evaluation"]`` is left out of the JSON: use :func:`synthviz.evaluation.evaluate_methods`
        and :func:`synthviz.evaluation.write_report` for the CSV and HTML files.
    """
    ev = evaluate_images(model, images, methods, masks=masks, size=size, checks=checks, weights=weights, device=device,
                         target=target, curve_steps=curve_steps, seed=seed,
                         say=(lambda s: print(s, file=__import__("sys").stderr)) if progress else None,
                         samples=samples, steps=ig_steps, layer=layer, metrics=metrics,
                         metric_options=metric_options, min_score=min_score)
    photos = ev.images
    first = ev.methods[0]
    scores = [((r["insertion_auc"] or 0.0) - (r["deletion_auc"] or 0.0)) for r in ev.rows if r["method"] == first]
    side = max(max(x.shape[-2:]) for x in photos.values())
    stacked = torch.cat([resize(x.cpu(), (side, side)) for x in photos.values()])
    return Result(stacked, objective="evaluate", scores=torch.tensor(scores), labels=list(photos),
                  figure=summary_figure(ev), technique="evaluate",
                  info={"model": ev.model, "methods": ev.methods, "rows": plain(ev.rows), "summary": plain(ev.summary()),
                        "ranks": plain(rank(ev, seed=seed).rows)})
