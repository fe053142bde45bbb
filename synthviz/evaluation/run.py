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

from ..models import Model
from ._maps import method_names, randomization_blocks, relevance, resolve_targets
from .checks import map_problem
from .curves import auc, deletion_curve, insertion_curve
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
    for c in checks:
        if c not in CHECKS:
            from ..errors import SynthvizError

            raise SynthvizError(f"unknown check '{c}'; use any of {', '.join(CHECKS)}")
    names = methods_with_references(methods)
    say = say or (lambda s: None)
    ev = Evaluation(rows=[], methods=names, model=model.name, images=dict(images))
    masks = masks or {}
    warm = False
    for image_name, x in images.items():
        x = x.to(model.device).float()
        t = resolve_targets(model, x, target)
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
            row.update(method=method, image=image_name, seconds=seconds, target=int(t[0]))
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
