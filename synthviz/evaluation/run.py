"""Every metric of every method on every image: the table behind ``synthviz evaluate``.

:func:`evaluate_methods` computes each method's map once per image (timed: the ``seconds`` column)
and scores it. Two reference rows are always added: ``random`` (uniform noise: what a map that knows
nothing scores) and ``smoothgrad`` (the smoothed gradient). A NaN, infinite or constant map is not
scored: its metrics stay empty and ``notes`` says why.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from ..checks import positive
from ..errors import SynthvizError
from ..models import Model, load_model
from ._maps import method_names, randomization_blocks, relevance, resolve_targets
from .checks import map_problem
from .curves import auc, deletion_curve, insertion_curve
from .inputs import load_images, load_masks
from .invariance import input_invariance
from .localisation import iou, pointing_game
from .randomization import randomize, similarity, stays_similar
from .road import road
from .robustness import gini, infidelity, max_sensitivity

REFERENCES = ("random", "smoothgrad")
COLUMNS = ["method", "image", "deletion_auc", "insertion_auc", "road_morf", "road_lerf", "pointing_game", "iou",
           "random_top_spearman", "random_top_ssim", "random_mid_spearman", "random_mid_ssim",
           "random_all_spearman", "random_all_ssim", "invariance_change", "invariance_spearman",
           "infidelity", "max_sensitivity", "gini", "seconds", "target", "notes"]
CHECKS = ("road", "randomization", "invariance", "robustness")
# what deletion removes pixels to and insertion reveals them on (curves.perturbation_curve's default)
CANVAS = "the image blurred (sigma = longer side / 10)"


@dataclass
class Evaluation:
    """The outcome of :func:`evaluate_methods`.

    Attributes:
        rows: one dict per (method, image), keys :data:`COLUMNS` (None where not measured).
        curves: {(method, image): {"deletion": [...], "insertion": [...]}} the probability curves.
        maps: {(method, image): (1, 1, H, W)} the relevance maps. ``images``: {image: (1, 3, H, W)}.
        methods: the methods in order, references included.
    """

    rows: list[dict]
    curves: dict = field(default_factory=dict)
    maps: dict = field(default_factory=dict)
    images: dict = field(default_factory=dict)
    methods: list[str] = field(default_factory=list)
    model: str = ""
    canvas: str = CANVAS  # deletion's and insertion's canvas, said in the report

    def summary(self) -> list[dict]:
        """One row per method: the mean of each numeric column over the scored images."""
        out = []
        for method in self.methods:
            rows = [r for r in self.rows if r["method"] == method]
            mean = {"method": method, "images": len(rows)}
            for col in COLUMNS[2:-2]:
                vals = [float(r[col]) for r in rows if r.get(col) is not None and math.isfinite(float(r[col]))]
                mean[col] = sum(vals) / len(vals) if vals else None
            mean["notes"] = "; ".join(sorted({n for r in rows for n in (r["notes"] or "").split("; ") if n}))
            out.append(mean)
        return out


def methods_with_references(methods: str | Sequence[str]) -> list[str]:
    """The methods asked for, then the references not among them (``random`` and ``smoothgrad``)."""
    names = [m for m in ([methods] if isinstance(methods, str) else list(methods))]
    listed = [] if names in (["random"], []) else method_names(",".join(n for n in names if n != "random"))
    return listed + [r for r in REFERENCES if r not in listed]


def check_options(methods: str | Sequence[str], checks: Sequence[str], curve_steps: int, options: dict) -> list[str]:
    """Every option checked before any work (one-line errors): the check names, ``curve_steps`` and
    the saliency options' counts (``samples``, ``steps``). Returns the methods, references added."""
    for c in checks:
        if c not in CHECKS:
            raise SynthvizError(f"unknown check '{c}'; use any of {', '.join(CHECKS)} (or none)")
    positive("curve_steps", curve_steps, integer=True)
    for key in ("samples", "steps"):
        positive(key, options.get(key), integer=True)
    return methods_with_references(methods)


def _random_map(x: torch.Tensor, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(len(x), 1, *x.shape[-2:], generator=gen)


def evaluate_methods(model: Model, images: dict[str, torch.Tensor], methods: str | Sequence[str] = "gradient",
                     masks: dict[str, torch.Tensor] | None = None, target=None, curve_steps: int = 16,
                     checks: Sequence[str] = CHECKS, seed: int = 0, sensitivity_samples: int = 3,
                     say: Callable[[str], None] | None = None, **options) -> Evaluation:
    """Score ``methods`` on ``images`` ({name: (1, 3, H, W) in [0, 1]}).

    Args:
        masks: {image name: (1, 1, H, W) ground truth} for the pointing game and IoU.
        target: the class explained (default: each image's prediction).
        curve_steps: chunks of the deletion/insertion curves (``curve_steps + 1`` forward passes each).
        checks: which of ``road``, ``randomization``, ``invariance``, ``robustness`` to run
            (deletion/insertion, Gini and the cost always are).
        options: saliency options (``samples`` of SmoothGrad, ``steps`` of IG, ``layer`` of Grad-CAM...).
    """
    names = check_options(methods, checks, curve_steps, options)
    say = say or (lambda s: None)
    ev = Evaluation(rows=[], methods=names, model=model.name, images=dict(images))
    masks = masks or {}
    warm = False
    for image_name, x in images.items():
        x = x.to(model.device).float()
        t = resolve_targets(model, x, target)  # the trained model's class, kept for every check
        cls = t.class_ids()[0].item()  # the curves follow a class's probability
        if not warm:  # the first pass of a shape builds its kernels: keep that out of the first method's cost
            relevance(model, x, "gradient", t)
            warm = True
        blocks = list(reversed(randomization_blocks(model, x))) if "randomization" in checks else []
        randomized = {}
        if blocks:
            randomized = {"top": randomize(model, blocks[0], seed),
                          "mid": randomize(model, blocks[len(blocks) // 2], seed),
                          "all": randomize(model, blocks, seed)}
        for method in names:
            start = time.perf_counter()
            maps = _random_map(x, seed) if method == "random" else relevance(model, x, method, t, **options)
            seconds = time.perf_counter() - start
            row = {c: None for c in COLUMNS}
            row.update(method=method, image=image_name, seconds=seconds, target=cls)
            problem = map_problem(maps)[0]
            ev.maps[(method, image_name)] = maps
            if problem:
                row["notes"] = f"{problem}: not scored"
                ev.rows.append(row)
                say(f"{image_name} {method}: {problem}, not scored")
                continue
            notes = []
            dele = deletion_curve(model, x, maps, t, steps=curve_steps, seed=seed)
            ins = insertion_curve(model, x, maps, t, steps=curve_steps, seed=seed)
            ev.curves[(method, image_name)] = {"deletion": dele[0].tolist(), "insertion": ins[0].tolist()}
            row.update(deletion_auc=float(auc(dele)[0]), insertion_auc=float(auc(ins)[0]),
                       gini=float(gini(maps)[0]))
            if "road" in checks:
                r = road(model, x, maps, t, seed=seed)
                row.update(road_morf=float(r["morf"][0]), road_lerf=float(r["lerf"][0]))
            if image_name in masks:
                mask = masks[image_name]
                row.update(pointing_game=float(pointing_game(maps, mask)[0]),
                           iou=float(iou(maps, mask)[0]))
            if method != "random":
                _model_checks(model, x, t, method, maps, row, notes, randomized, checks, seed,
                              sensitivity_samples, options)
            row["notes"] = "; ".join(notes) or None
            ev.rows.append(row)
            say(f"{image_name} {method}: deletion {row['deletion_auc']:.3f}, insertion {row['insertion_auc']:.3f}"
                f", {seconds:.2f} s{'; ' + row['notes'] if row['notes'] else ''}")
    return ev


def _model_checks(model, x, t, method, maps, row, notes, randomized, checks, seed, sensitivity_samples, options):
    """The checks that recompute the map on changed models or inputs (fill ``row`` and ``notes``)."""
    for key, work in randomized.items():
        other = torch.nan_to_num(relevance(work, x, method, t, **options))
        sim = similarity(maps, other)
        row[f"random_{key}_spearman"], row[f"random_{key}_ssim"] = sim["spearman"], sim["ssim"]
        if key == "all" and stays_similar(sim):
            notes.append("map stays similar with every layer randomized")
    if "invariance" in checks:
        inv = input_invariance(model, x, method, t, **options)
        row["invariance_change"], row["invariance_spearman"] = float(inv["change"][0]), float(inv["spearman"][0])
        if not bool(inv["invariant"][0]):
            notes.append("not input invariant")
    if "robustness" in checks:
        row["infidelity"] = float(infidelity(model, x, maps, t, seed=seed)[0])
        row["max_sensitivity"] = float(max_sensitivity(
            lambda z: relevance(model, z, method, t, **options), x, samples=sensitivity_samples, seed=seed)[0])


def parse_checks(checks: str | Sequence[str]) -> list[str]:
    """``"road,invariance"`` or a list -> the check names; ``"none"`` or ``""`` -> none."""
    names = checks.split(",") if isinstance(checks, str) else list(checks)
    names = [c.strip() for c in names if c.strip()]
    return [] if [c.lower() for c in names] == ["none"] else names


def evaluate_images(model="efficientnet_lite0", images=None, methods: str | Sequence[str] = "gradient", *,
                    masks=None, size: int | None = 128, checks: str | Sequence[str] = CHECKS,
                    weights: str = "default", device: str | None = None, **kwargs) -> Evaluation:
    """:func:`evaluate_methods` from what a user gives: a model name (or Model), ``images`` (a path, a
    folder, a list of paths or a (B, 3, H, W) tensor in [0, 1], resized to longer side ``size``),
    ``masks`` (a folder of masks named like the images, a tensor or a dict) and ``checks`` (a comma
    list, or ``"none"``). ``kwargs`` go to :func:`evaluate_methods` (target, curve_steps, seed, say,
    and the saliency options such as ``samples``, ``steps``, ``layer``)."""
    checks = parse_checks(checks)
    check_options(methods, checks, kwargs.get("curve_steps", 16), kwargs)  # a bad value fails before the model loads
    positive("size", size, integer=True)
    m = load_model(model, weights, device)
    photos = load_images(images, size, min_side=m.min_size)  # too small for the model: skipped and listed
    return evaluate_methods(m, photos, methods, masks=load_masks(masks, photos), checks=checks, **kwargs)
