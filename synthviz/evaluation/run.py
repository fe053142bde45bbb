"""Every metric of every method on every image: the table behind ``synthviz evaluate``.

:func:`evaluate_methods` computes each method's map once per image (timed: the ``seconds`` column)
and scores it. Two references are always added: ``random`` (random maps matched in smoothness to the
methods, the mean over 8 draws: what a map that knows nothing scores, :mod:`.references`) and
``smoothgrad`` (the smoothed gradient). ``metrics`` adds any registered metric
(:mod:`synthviz.evaluation.metrics`) as one more column each. A NaN, infinite or constant map is
not scored: its metrics stay empty and ``notes`` says why.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from ..checks import positive
from ..errors import BadValue, SynthvizError
from ..detection_models import task_of
from ..targets import detection_target
from ..models import Model, load_model
from ._maps import method_names, randomization_blocks, relevance, relevance_and_grid, resolve_targets
from .checks import map_problem
from .curves import auc, deletion_curve, insertion_curve
from .inputs import load_images, load_masks
from .invariance import input_invariance
from .localisation import iou, pointing_game
from .metrics import select
from .randomization import randomize, similarity, stays_similar
from .references import DRAWS, RANDOM, describe, is_random, random_maps, reference_rows, stride
from .road import road
from .robustness import gini, infidelity, max_sensitivity

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
        metrics: the registered metrics scored (:func:`~synthviz.evaluation.score`), one column each
            (:attr:`columns`). ``references``: {random row: what it is, in words}; ``matched``:
            {method: the random row of its smoothness}.
    """

    rows: list[dict]
    curves: dict = field(default_factory=dict)
    maps: dict = field(default_factory=dict)
    images: dict = field(default_factory=dict)
    methods: list[str] = field(default_factory=list)
    model: str = ""
    canvas: str = CANVAS  # deletion's and insertion's canvas, said in the report
    metrics: list[str] = field(default_factory=list)
    references: dict = field(default_factory=dict)
    matched: dict = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        """The CSV's columns: :data:`COLUMNS` with one per registered metric before ``seconds``."""
        return COLUMNS[:-3] + [select.column(m, COLUMNS) for m in self.metrics] + COLUMNS[-3:]

    def summary(self) -> list[dict]:
        """One row per method: the mean of each numeric column over the scored images."""
        out = []
        for method in self.methods:
            rows = [r for r in self.rows if r["method"] == method]
            mean = {"method": method, "images": len(rows)}
            for col in self.columns[2:-2]:
                vals = [float(r[col]) for r in rows if r.get(col) is not None and math.isfinite(float(r[col]))]
                mean[col] = sum(vals) / len(vals) if vals else None
            mean["notes"] = "; ".join(sorted({n for r in rows for n in (r["notes"] or "").split("; ") if n}))
            out.append(mean)
        return out


def methods_with_references(methods: str | Sequence[str]) -> list[str]:
    """The methods asked for, then the references not among them (``random``, ``random_pixels``
    when named, and ``smoothgrad``)."""
    names = [n.strip() for m in ([methods] if isinstance(methods, str) else list(methods)) for n in m.split(",")]
    names = [n for n in names if n]
    real = [n for n in names if n not in RANDOM]
    listed = method_names(",".join(real)) if real else []
    refs = ["random"] + (["random_pixels"] if "random_pixels" in names else []) + ["smoothgrad"]
    return listed + [r for r in refs if r not in listed]


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


def evaluate_methods(model: Model, images: dict[str, torch.Tensor], methods: str | Sequence[str] = "gradient",
                     masks: dict[str, torch.Tensor] | None = None, target=None, curve_steps: int = 16,
                     checks: Sequence[str] = CHECKS, seed: int = 0, sensitivity_samples: int = 3,
                     metrics: str | Sequence[str] = (), metric_options: dict | Sequence[str] | None = None,
                     say: Callable[[str], None] | None = None, min_score: float = 0.5, **options) -> Evaluation:
    """Score ``methods`` on ``images`` ({name: (1, 3, H, W) in [0, 1]}).

    Args:
        masks: {image name: (1, 1, H, W) ground truth} for the pointing game, IoU and the
            localisation metrics.
        target: the class explained (default: each image's prediction), or any
            :class:`~synthviz.targets.Target`. On a detector a box target (``targets.box(xyxy, K)``);
            default: each image's best detection scoring at least ``min_score`` (of class ``target``
            when it is a class). The curves then follow the target's score (IoU + confidence, 0 once
            the detection is lost); the checks that need a classifier are skipped with a note.
        curve_steps: chunks of the deletion/insertion curves (``curve_steps + 1`` forward passes each).
        checks: which of ``road``, ``randomization``, ``invariance``, ``robustness`` to run
            (deletion/insertion, Gini and the cost always are).
        metrics: registered metrics (a comma list or names, :func:`synthviz.evaluation.metrics.names`)
            scored as one more column each; ``metric_options``: {option: value} (or ``"KEY=VALUE"``
            strings) given to every chosen metric that takes it. Metrics that explain again
            (robustness, randomisation) explain with the method under test, on the same options.
        options: saliency options (``samples`` of SmoothGrad, ``steps`` of IG, ``layer`` of Grad-CAM...).
    """
    names = check_options(methods, checks, curve_steps, options)
    chosen, per_metric = select.checked(metrics, metric_options)
    say = say or (lambda s: None)
    ev = Evaluation(rows=[], methods=names, model=model.name, images=dict(images), metrics=chosen)
    ctx = dict(masks=masks or {}, checks=checks, curve_steps=curve_steps, seed=seed, metrics=per_metric,
               sensitivity_samples=sensitivity_samples, options=options)
    for i, (image_name, x) in enumerate(images.items()):
        x = x.to(model.device).float()
        t = resolve_targets(model, x, _chosen(model, x, target, min_score, image_name))  # kept for every check
        if i == 0:  # the first pass of a shape builds its kernels: keep that out of the first method's cost
            relevance(model, x, "gradient", t)
        randomized = _randomized(model, x, checks, seed)
        drawn = {}  # method -> (maps (1, 1, H, W), native grid, seconds)
        for method in (n for n in names if not is_random(n)):
            start = time.perf_counter()
            maps, grid = relevance_and_grid(model, x, method, t, **options)
            drawn[method] = (maps, grid, time.perf_counter() - start)
        if i == 0:
            matched = _name_references(ev, names, {m: d[1] for m, d in drawn.items()}, tuple(x.shape[-2:]))
        for method in ev.methods:
            if is_random(method):
                start = time.perf_counter()
                cell = stride(drawn[matched[method][0]][1], x.shape[-2:]) if matched[method] else 1
                maps, seconds = random_maps(tuple(x.shape[-2:]), cell, DRAWS, seed + i), time.perf_counter() - start
            else:
                maps, _, seconds = drawn[method]
            row = _score(model, x, t, method, maps, image_name, ev, randomized, ctx)
            row["seconds"] = seconds
            ev.rows.append(row)
            scored = f"deletion {row['deletion_auc']:.3f}, insertion {row['insertion_auc']:.3f}, {seconds:.2f} s" \
                if row["deletion_auc"] is not None else ""
            say(f"{image_name} {method}: " + "; ".join(p for p in (scored, row["notes"]) if p))
    return ev


def _chosen(model: Model, x: torch.Tensor, target, min_score: float, image: str):
    """What is explained on ``x`` (1, 3, H, W): ``target`` (the trained model's class; None: its
    prediction), or on a detector the box target (:func:`~synthviz.targets.detection_target`)."""
    if task_of(model) != "detection":
        return target
    try:
        return detection_target(model, x, target, min_score)
    except BadValue as e:  # a folder: say which photo
        raise BadValue(f"{image}: {e}") from None


def _randomized(model: Model, x: torch.Tensor, checks: Sequence[str], seed: int) -> dict:
    """{"top", "mid", "all": a copy of the model with those blocks re-initialised} (randomization check)."""
    blocks = list(reversed(randomization_blocks(model, x))) if "randomization" in checks else []
    if not blocks:
        return {}
    return {"top": randomize(model, blocks[0], seed), "mid": randomize(model, blocks[len(blocks) // 2], seed),
            "all": randomize(model, blocks, seed)}


def _name_references(ev: Evaluation, names: list[str], grids: dict, size: tuple[int, int]) -> dict[str, list[str]]:
    """Expand ``random`` in ``ev.methods`` into the rows matched to the methods' native grids on the
    first image (:func:`~synthviz.evaluation.references.reference_rows`); returns {row: its methods}."""
    at = names.index("random")
    listed = names[:at] or list(grids)  # only references asked: match smoothgrad
    rows = reference_rows({m: grids[m] for m in listed}, size, names)
    ev.methods = names[:at] + list(rows) + [n for n in names[at:] if n not in RANDOM]
    ev.references = {name: describe(name, matched, stride(grids[matched[0]], size) if matched else 1)
                     for name, matched in rows.items()}
    ev.matched = {m: name for name, matched in rows.items() for m in matched}
    strides = {stride(grids[matched[0]], size) if matched else 1: name for name, matched in rows.items()}
    for m in grids:  # references not matched above (smoothgrad): the row of their stride, if any
        if m not in ev.matched and stride(grids[m], size) in strides:
            ev.matched[m] = strides[stride(grids[m], size)]
    return rows


def _score(model: Model, x: torch.Tensor, t, method: str, maps: torch.Tensor, image: str, ev: Evaluation,
           randomized: dict, ctx: dict) -> dict:
    """One row: the metrics of ``maps`` (1 or D draws, 1, H, W) of ``method`` on image ``x`` (1, 3, H, W);
    a random reference's D draws are scored together and averaged (the pointing game: the first draw's)."""
    row = {c: None for c in ev.columns}
    cls = t.class_ids()[0].item() if t.is_class else t.name  # the curves follow its probability (or score)
    row.update(method=method, image=image, target=cls)
    problem = map_problem(maps[:1])[0]
    ev.maps[(method, image)] = maps[:1]
    if problem:
        row["notes"] = f"{problem}: not scored"
        return row
    d = len(maps)
    xs, ts = x.expand(d, -1, -1, -1), t.repeat(d)
    steps, seed, notes = ctx["curve_steps"], ctx["seed"], []
    dele = deletion_curve(model, xs, maps, ts, steps=steps, seed=seed).mean(0, keepdim=True)
    ins = insertion_curve(model, xs, maps, ts, steps=steps, seed=seed).mean(0, keepdim=True)
    ev.curves[(method, image)] = {"deletion": dele[0].tolist(), "insertion": ins[0].tolist()}
    row.update(deletion_auc=float(auc(dele)[0]), insertion_auc=float(auc(ins)[0]), gini=float(gini(maps).mean()))
    if "road" in ctx["checks"]:
        r = road(model, xs, maps, ts, seed=seed)
        row.update(road_morf=float(r["morf"].mean()), road_lerf=float(r["lerf"].mean()))
    mask = ctx["masks"].get(image)
    if mask is not None:
        row.update(pointing_game=float(pointing_game(maps[:1], mask)[0]),
                   iou=float(iou(maps, mask.expand(d, -1, -1, -1)).float().mean()))
    explain = None
    if not is_random(method):
        options = ctx["options"]
        _model_checks(model, x, t, method, maps, row, notes, randomized, ctx["checks"], seed,
                      ctx["sensitivity_samples"], options)
        explain = lambda m, z, classes: relevance(m, z.to(m.device), method, classes, **options)  # noqa: E731
    chosen = ctx["metrics"] if t.is_class else {}
    if ctx["metrics"] and not t.is_class:
        notes.append(f"{', '.join(ctx['metrics'])}: skipped (the registered metrics score a classifier's class)")
    scores = select.score_metrics(model, xs, maps, cls, chosen, mask, explain)
    row.update({select.column(name, COLUMNS): value for name, value in scores.items()})
    row["notes"] = "; ".join(notes) or None
    return row


def _model_checks(model, x, t, method, maps, row, notes, randomized, checks, seed, sensitivity_samples, options):
    """The checks that recompute the map on changed models or inputs (fill ``row`` and ``notes``)."""
    for key, work in randomized.items():
        other = torch.nan_to_num(relevance(work, x, method, t, **options))
        sim = similarity(maps, other)
        row[f"random_{key}_spearman"], row[f"random_{key}_ssim"] = sim["spearman"], sim["ssim"]
        if key == "all" and stays_similar(sim):
            notes.append("map stays similar with every layer randomized")
    if "invariance" in checks and task_of(model) == "detection":
        notes.append("invariance: skipped (a detector normalises its input inside: no first layer to shift)")
    elif "invariance" in checks:
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
    and the saliency options such as ``samples``, ``steps``, ``layer``; ``metrics``, ``metric_options``)."""
    checks = parse_checks(checks)
    check_options(methods, checks, kwargs.get("curve_steps", 16), kwargs)  # a bad value fails before the model loads
    select.checked(kwargs.get("metrics"), kwargs.get("metric_options"))
    positive("size", size, integer=True)
    m = load_model(model, weights, device)
    photos = load_images(images, size, min_side=m.min_size)  # too small for the model: skipped and listed
    return evaluate_methods(m, photos, methods, masks=load_masks(masks, photos), checks=checks, **kwargs)
