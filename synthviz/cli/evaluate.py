"""``synthviz evaluate`` (which explanation to trust: metrics.csv + index.html) and ``synthviz attack-map``
(the fragility attack: the attacked 8-bit photo, the maps before/after, the numbers as JSON)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import SynthvizError
from ..io import IMAGE_SUFFIXES, check_writable, claim_folder, save_image, write_file
from ..result import plain
from .app import app
from .common import (DEFAULTS, DETECTION_OPTIONS, ClassOpt, DeviceOpt, ModelOpt, OverwriteOpt, SeedOpt, WeightsOpt,
                     best_detection, command, detection_targets, say, wants_detection)

LayerOpt = Annotated[str | None, typer.Option(help="Grad-CAM layer (default: the model's last convolutional stage).")]


def _detection_target(model, image: Path, size: int, cls, detection: dict):
    """What evaluate explains: on a detector (or with --box / --min-score) the box target on
    IMAGE (a photo: the best qualifying detection, one line when none does; a folder: --class, each
    photo's best detection chosen in the library), else the --class given."""
    if detection.get("box") is not None and image.is_dir():
        raise SynthvizError("--box is drawn on one photo; give a photo, not a folder (or use --class and --min-score)")
    from ..detection_models import keep_scores_from, task_of

    if image.is_file():
        found = detection_targets(model, image, size, cls, detection)
        return best_detection(found) if found is not None else cls
    if detection.get("min_score") is not None:  # a folder: each photo's best detection, in the library
        if task_of(model) != "detection":
            raise SynthvizError(f"--min-score needs a detection model, not {model.name}; use e.g. "
                                "--model fasterrcnn_resnet50_fpn")
        keep_scores_from(model, detection["min_score"])
    return cls


@command(app, "evaluate")
@DETECTION_OPTIONS
def evaluate_cmd(
    images: Annotated[Path, typer.Argument(help="An image or a folder of images.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder for metrics.csv and index.html.")],
    methods: Annotated[str, typer.Option(help="Comma list of saliency methods; random and smoothgrad are always added as references.")] = "gradient,grad_x_input,integrated_gradients,gradcam",
    masks: Annotated[Path | None, typer.Option(help="Folder of ground-truth masks named like the images (pointing game, IoU).")] = None,
    checks: Annotated[str, typer.Option(help="Slower checks to run, comma list: road, randomization, invariance, robustness (or none).")] = "road,randomization,invariance,robustness",
    metrics: Annotated[str, typer.Option(help="Registered metrics to add, comma list of Quantus names (sparseness, pixel_flipping, irof, road, max_sensitivity, ...; synthviz.evaluation.metrics.names()).")] = "",
    metric_option: Annotated[Optional[list[str]], typer.Option(help="A metric option as KEY=VALUE (repeatable), given to every chosen metric that takes it, e.g. --metric-option features_in_step=64.")] = None,
    target: ClassOpt = None, detection: dict = DETECTION_OPTIONS.default,
    model: ModelOpt = DEFAULTS["model"], weights: WeightsOpt = "default",
    size: Annotated[int, typer.Option(help="Longer side of each image as the model sees it.")] = 128,
    curve_steps: Annotated[int, typer.Option(help="Chunks of the deletion and insertion curves.")] = 16,
    samples: Annotated[int, typer.Option(help="SmoothGrad: noisy copies.")] = 16,
    ig_steps: Annotated[int, typer.Option(help="Integrated gradients: points on the path.")] = 32,
    layer: LayerOpt = None, seed: SeedOpt = 0, device: DeviceOpt = "auto", overwrite: OverwriteOpt = False,
) -> None:
    """Which explanation to trust: deletion/insertion, ROAD, localisation, randomization, input
    invariance, infidelity, sensitivity, sparseness, cost and any registered metric (--metrics) of each
    method, as OUT/metrics.csv, OUT/ranks.csv (methods ranked per metric with bootstrap 95% intervals),
    OUT/summary.md (the best method per family) and OUT/index.html (maps beside their curves).
    A detector explains the detection on --box (of --class), else each photo's best detection scoring
    --min-score (0.5): the curves follow its score (IoU + confidence)."""
    from ..evaluation.report import REPORT_FILES, write_report
    from ..evaluation.run import evaluate_images
    from ..models import load_model

    min_score = detection.get("min_score")
    if wants_detection(model, detection):
        model = load_model(model, weights, device)
        target = _detection_target(model, images, size, target, detection)

    # claimed now, written at the end: a second run into the same --out meanwhile is refused at its start
    with claim_folder(out, holds=REPORT_FILES, overwrite=overwrite, what="a report"):
        ev = evaluate_images(model, images, methods, masks=masks, size=size, checks=checks, weights=weights,
                             device=device, target=target, curve_steps=curve_steps, seed=seed, say=say,
                             **({} if min_score is None else {"min_score": min_score}),
                             metrics=metrics, metric_options=metric_option or [],
                             samples=samples, steps=ig_steps, layer=layer)
        for s in ev.summary():
            cells = [f"{k.replace('_auc', '')} {s[k]:.3f}" for k in ("deletion_auc", "insertion_auc")
                     if s.get(k) is not None]
            say(f"{s['method']}: {', '.join(cells) or 'not scored'}, {s['seconds']:.2f} s/image"
                f"{'; ' + s['notes'] if s['notes'] else ''}")
        say(f"deletion and insertion canvas: {ev.canvas}")
        for path in write_report(ev, out, overwrite=True):
            say(f"saved {path}")


@command(app, "attack-map")
@DETECTION_OPTIONS
def attack_map_cmd(
    image: Annotated[Path, typer.Argument(help="The photo whose explanation is attacked.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The attacked photo (8-bit PNG); OUT-maps.png and OUT.json go beside it.")] = Path("attacked.png"),
    method: Annotated[str, typer.Option(help="gradient, grad_x_input, integrated_gradients or gradcam.")] = "gradient",
    attack: Annotated[str, typer.Option(help="topk (out of the original top-k pixels), center (move the centre of mass) or region.")] = "topk",
    epsilon: Annotated[str, typer.Option(help="L-infinity budget in pixel units, e.g. 8/255.")] = "8/255",
    steps: Annotated[int, typer.Option(help="Sign steps.")] = 30,
    k: Annotated[int | None, typer.Option(help="Top-k size in pixels (default 2% of the image).")] = None,
    beta: Annotated[float, typer.Option(help="Softplus beta of the smooth activations used for the attack.")] = 30.0,
    size: Annotated[int, typer.Option(help="Longer side of the photo as the model sees it.")] = 224,
    model: ModelOpt = DEFAULTS["model"], weights: WeightsOpt = "default", layer: LayerOpt = None,
    target: ClassOpt = None, detection: dict = DETECTION_OPTIONS.default,
    seed: SeedOpt = 0, device: DeviceOpt = "auto", overwrite: OverwriteOpt = False,
) -> None:
    """The fragility attack (Ghorbani et al. 2019): a change within an L-infinity budget that keeps the
    label (checked after 8-bit rounding) but moves the saliency map. Prints and saves the top-k
    intersection and rank correlation with the original map, for the attack and a random change.
    A detector's map explains the detection on --box (of --class), else the best one scoring
    --min-score (0.5); the attack keeps it detected, its score at least the photo's."""
    from ..models import load_model
    from ..techniques.attack_map import attack_map

    if out.suffix.lower() != ".png":
        raise SynthvizError(f"--out must be a .png file (8 bits, lossless), not {out.name}")
    check_writable(out, IMAGE_SUFFIXES, [image])
    if wants_detection(model, detection):
        model = load_model(model, weights, device)
        found = detection_targets(model, image, size, target, detection)
        target = best_detection(found) if found is not None else target
    result = attack_map(model, image, target=target, method=method, attack=attack, epsilon=epsilon, steps=steps, k=k, beta=beta,
                        size=size, layer=layer, weights=weights, device=device, seed=seed, progress=True)
    print(result.info["report"])
    path = save_image(result.images[0], out, overwrite)
    maps = save_image(result.figure, path.with_name(f"{path.stem}-maps.png"), overwrite)
    sidecar = write_file(path.with_suffix(".json"), json.dumps(plain(result.info), indent=2) + "\n", overwrite)
    for p in (path, maps, sidecar):
        say(f"saved {p}")
    if not result.info["label_kept"]:
        raise typer.Exit(1)
