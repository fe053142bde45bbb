"""Pictures of a learnt dictionary: a concept's coefficient map over an image, an image decomposed
into its concepts, and the rendered picture of a concept.

A concept is drawn the way feature visualization draws a unit: the engine maximises the layer's
activation along the concept's direction times its cosine with it to a power (``cossim_pow``;
Lucid's activation-atlas icons), one concept per batch element (``direction(..., batch=i)``), so
one optimization renders several concepts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import SynthvizError
from ..io import as_image, save_image
from ..layers import LOGITS, Tap, capture, parse_units, view_of
from ..models import Model, load_model
from ..objectives import direction
from ..recipes import visualize
from ..result import Result
from .dictionary import Dictionary
from .stream import gradient_step, positions

GROUP = 8  # concepts rendered in one optimization


def open_concepts(run: str | os.PathLike) -> tuple[Dictionary, dict]:
    """A run's dictionary and settings (one-line errors for a folder that is not a finished run)."""
    run = Path(run)
    if not run.is_dir():
        raise SynthvizError(f"{run} is not a concepts run folder; make one with `synthviz concepts DATASET --out {run}`")
    try:
        manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
        settings = manifest["settings"]
    except (OSError, ValueError, KeyError, TypeError):
        raise SynthvizError(f"{run} holds no concepts run (manifest.json); make one with `synthviz concepts`") from None
    if not (run / "dictionary.pt").exists():
        raise SynthvizError(f"{run} holds no dictionary yet; run the same `synthviz concepts` command to finish it")
    return Dictionary.load(run / "dictionary.pt"), settings


def run_model(dictionary: Dictionary, model=None, weights: str = "default") -> Model:
    """The model a run was learnt on (``model`` overrides it: an ``nn.Module`` run has no name to load)."""
    return load_model(model if model is not None else dictionary.model, weights)


def coefficient_maps(model: Model, dictionary: Dictionary, images: torch.Tensor) -> torch.Tensor:
    """Images (B, 3, S, S) -> maps (B, K, h, w) of every concept's coefficient (a truncated forward)."""
    with torch.no_grad():
        view = view_of(model, dictionary.layer, capture(model, images, [dictionary.layer])[dictionary.layer],
                       model.input_hw(images))
    z = dictionary.encode(positions(view).reshape(-1, view.shape[1]).float().cpu())
    h, w = view.shape[2:] if view.dim() == 4 else (1, 1)
    return z.reshape(len(images), h * w, -1).transpose(1, 2).reshape(len(images), -1, h, w)


def maps_and_importance(model: Model, dictionary: Dictionary, images: torch.Tensor, target: int | None = None):
    """Images (B, 3, S, S) -> (maps (B, K, h, w), gradient × coefficient (B, K) for the predicted
    class (or ``target``), classes (B,))."""
    with model.evaluating(), Tap(model, [dictionary.layer, LOGITS], grad="leaf") as tap:
        z, share, classes, (h, w) = gradient_step(model, tap, dictionary.layer, dictionary, images, target)
    return z.transpose(1, 2).reshape(len(z), -1, h, w), share, classes


def upsample(maps: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """(B, K, h, w) -> (B, K, H, W), bilinear."""
    return F.interpolate(maps, size=hw, mode="bilinear", align_corners=False)


def render_concepts(run: str | os.PathLike, concepts: str | list[int] | None = None, *, model=None,
                    steps: int | None = None, size: int = 128, recipe: str = "lucid", cossim_pow: float = 1.0,
                    seed: int = 0, progress: bool | str = False, save: bool = True) -> Result:
    """Render ``concepts`` (``"0-7"``, a list; default all) of the run: ``images`` (n, 3, size, size);
    saved as ``run/renders/concept-<k>.png`` unless ``save`` is False."""
    dictionary, _ = open_concepts(run)
    try:
        chosen = parse_units(concepts, dictionary.concepts)
    except SynthvizError as e:
        if "out of range" not in str(e):
            raise
        raise SynthvizError(f"concepts {concepts} are out of range: the run has {dictionary.concepts} concepts, "
                            f"use 0-{dictionary.concepts - 1}") from None
    m = run_model(dictionary, model)
    parts, values = [], []
    for start in range(0, len(chosen), GROUP):
        group = chosen[start:start + GROUP]
        objective = sum(direction(dictionary.layer, dictionary.atoms[k], cossim_pow, batch=i)
                        for i, k in enumerate(group))
        result = visualize(m, objective, batch=len(group), size=size, recipe=recipe, steps=steps, seed=seed,
                           progress=progress)
        parts.append(result.images)
        values.append(result.values if len(result.history) else torch.zeros(len(group)))
    images = torch.cat(parts)
    if save:
        folder = Path(run) / "renders"
        for k, image in zip(chosen, images):
            save_image(image, folder / f"concept-{k:03d}.png", overwrite=True)
    return Result(images=images, labels=[f"concept {k}" for k in chosen], scores=torch.cat(values).float(),
                  objective=f"direction({dictionary.layer})", info={"concepts": chosen, "layer": dictionary.layer})


def default_importance(dictionary: Dictionary) -> str:
    """The importance the issue's rule gives a dictionary: CRAFT's total Sobol indices (``sobol``)
    for an NMF, gradient × coefficient (``gradient``) for a sparse autoencoder
    (:func:`~synthviz.concepts.dictionary.importance_rule`)."""
    from .dictionary import importance_rule

    return importance_rule(dictionary.method)


def concept_map(run: str | os.PathLike, image, *, model=None, target: int | str | None = None,
                threshold: float = 0.05, importance: str | None = None, seed: int = 0) -> dict:
    """``image`` (a path or a tensor) decomposed into the run's concepts at the photo's own size.

    ``importance``: ``sobol`` (CRAFT's total Sobol indices, :mod:`synthviz.concepts.sobol`) or
    ``gradient`` (gradient × coefficient); None: :func:`default_importance` (sobol for NMF, gradient
    for SAEs). Returns ``{"photo": (3, H, W), "maps": (K, H, W) coefficients, "importance": (K,)
    for ``target`` (default the predicted class), "importance_kind": which, "class": its index,
    "class_name", "active": the concepts whose largest coefficient is at least ``threshold`` of the largest}``."""
    from ..checks import choice

    dictionary, settings = open_concepts(run)
    kind = default_importance(dictionary) if importance is None else choice("importance", importance,
                                                                            ("gradient", "sobol"))
    m = run_model(dictionary, model, settings.get("weights", "default"))
    photo = as_image(image, min_side=m.min_size)
    size = settings["size"]
    x = F.interpolate(photo, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    index = None if target is None else m.class_index(target)
    if kind == "sobol":
        from .sobol import sobol_step

        z, share, classes, (h, w) = sobol_step(m, dictionary, x, index, seed=seed)
        maps = z.transpose(1, 2).reshape(len(z), -1, h, w)
    else:
        maps, share, classes = maps_and_importance(m, dictionary, x, index)
    big = upsample(maps, tuple(photo.shape[-2:]))[0]
    peak = maps[0].flatten(1).amax(1)
    active = [k for k in range(len(peak)) if peak[k] > 0 and peak[k] >= threshold * float(peak.max())]
    c = int(classes[0])
    return {"photo": photo[0], "maps": big, "importance": share[0], "importance_kind": kind, "class": c,
            "class_name": m.class_name(c), "active": active}


def concept_map_result(found: dict) -> Result:
    """A :func:`concept_map` as a :class:`Result`: one heatmap over the photo per active concept,
    captioned with its importance; the figure is the photo then the heatmaps."""
    from ..io import make_grid
    from ..overlay import overlay

    photo, active = found["photo"], found["active"]
    maps = found["maps"][active][:, None] if active else torch.zeros(0, 1, *photo.shape[-2:])
    images = overlay(photo[None].expand(len(active), -1, -1, -1), maps, display="positive") if active else photo[None]
    labels = [f"concept {k}: {float(found['importance'][k]):+.3g}" for k in active] or ["no active concept"]
    figure = make_grid(torch.cat([photo[None], images]), [f"photo ({found['class_name']})", *labels])
    return Result(images=images, labels=labels, figure=figure, objective="concepts",
                  scores=torch.tensor([float(found["importance"][k]) for k in active]) if active else None,
                  info={"class": found["class"], "class_name": found["class_name"], "active": active,
                        "importance": [float(v) for v in found["importance"]],
                        "importance_kind": found.get("importance_kind", "gradient")})
