"""``synthviz saliency`` (the comparison figure + raw maps, for one photo or a folder) and
``synthviz sanity`` (cascading randomization). Method options default to each method's own
(read from the attribution registry); ``--set KEY=VALUE`` reaches any option of any method."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .. import targets
from ..attribution import METHODS, check_options, option_defaults
from ..engine import RenderInterrupted
from ..errors import SynthvizError
from ..io import csv_text, deferred_interrupt, save_image, write_file
from ..hf_models import with_output
from ..models import load_model
from ..presets import parse_set
from ..techniques.sanity import sanity
from .app import app
from .common import (DEFAULTS, DETECTION_OPTIONS, FOUNDATION_OPTIONS, ClassesOpt, ClassOpt, DeviceOpt, MaskOpt, ModelOpt,
                     OptionSet, OutOpt, OutputIndexOpt, OverwriteOpt, SimilarOpt, TextOpt, WeightsOpt, best_detection,
                     command, detection_targets, prepare_outputs, say,
                     wants_detection)

D = option_defaults()


def _d(key: str) -> str:
    value = D.get(key)
    return "the method's own" if value is None else str(value)


ImageArg = Annotated[Path, typer.Argument(help="The photo to explain (PNG, JPEG...), or a folder of photos.")]
SizeOpt = Annotated[int, typer.Option(help="Longer side of the photo as the model sees it, in pixels.")]
LayerOpt = Annotated[Optional[str], typer.Option(help="Layer of the CAM family (default: the model's last convolutional stage).")]
BaseOpt = Annotated[Optional[str], typer.Option(help=f"SmoothGrad: the method averaged over noisy copies (default {_d('base')}).")]
SamplesOpt = Annotated[Optional[int], typer.Option(help=f"Noisy copies / random samples (default: the method's own; SmoothGrad {_d('samples')}).")]
NoiseOpt = Annotated[Optional[float], typer.Option(help=f"SmoothGrad: noise sigma as a fraction of the input range (default {_d('noise')}).")]
SquaredOpt = Annotated[Optional[bool], typer.Option("--squared/--no-squared", help="SmoothGrad: average the squared maps.")]
IgStepsOpt = Annotated[Optional[int], typer.Option("--steps", help=f"Integrated gradients: points on the path (default {_d('steps')}).")]
BaselineOpt = Annotated[Optional[str], typer.Option(help=f"Integrated gradients: black, white, blurred or an image file (default {_d('baseline')}).")]
RuleOpt = Annotated[Optional[str], typer.Option(help=f"Integrated gradients: riemann (midpoint) or gauss-legendre (default {_d('rule')}).")]
WindowOpt = Annotated[Optional[int], typer.Option(help=f"Occlusion: window side in pixels (default {_d('window')}).")]
StrideOpt = Annotated[Optional[int], typer.Option(help=f"Occlusion: window step in pixels (default {_d('stride')}).")]
ValueOpt = Annotated[Optional[float], typer.Option(help=f"Occlusion: fill value in [0, 1] (default {_d('value')}).")]
AugOpt = Annotated[Optional[bool], typer.Option("--aug-smooth/--no-aug-smooth", help="CAM family: test-time augmentation smoothing (mirror x contrast, 6x the cost).")]
EigenOpt = Annotated[Optional[bool], typer.Option("--eigen-smooth/--no-eigen-smooth", help="CAM family: first principal component of the weighted activations.")]
BatchOpt = Annotated[Optional[int], typer.Option(help="Images per forward pass for the methods that expand each image (default: the method's own; the forward-only ones, e.g. Score-CAM and occlusion, take on the CPU as many as keep the network's largest activation under 16 MiB).")]
SeedOpt = Annotated[Optional[int], typer.Option(help="Seed of the random draws (SmoothGrad noise, masks, the sanity re-initialisation).")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Any method option as KEY=VALUE (repeatable), e.g. --set ratio=0.5.")]

# The saliency methods' options, shared by `saliency` and `sanity` (None: the method's own default).
METHOD_OPTIONS = OptionSet(
    "options", layer=(LayerOpt, None), base=(BaseOpt, None), samples=(SamplesOpt, None), noise=(NoiseOpt, None),
    squared=(SquaredOpt, None), steps=(IgStepsOpt, None), baseline=(BaselineOpt, None), rule=(RuleOpt, None),
    window=(WindowOpt, None), stride=(StrideOpt, None), value=(ValueOpt, None), aug_smooth=(AugOpt, None),
    eigen_smooth=(EigenOpt, None), batch_size=(BatchOpt, None), seed=(SeedOpt, None), set_=(SetOpt, None))


def _options(given: dict) -> dict:
    """The method options given (None: the method's default) and the --set ones, checked against the registry."""
    named = {k: v for k, v in given.items() if k != "set_"}
    return check_options({**named, **parse_set(given.get("set_") or [])})


@command(app, "saliency")
@METHOD_OPTIONS
@FOUNDATION_OPTIONS
def saliency_cmd(
    image: ImageArg,
    methods: Annotated[str, typer.Option(help="all, or a comma list of: " + ", ".join(METHODS) + " (rollout and chefer: transformers only, not in all).")] = "all",
    target: ClassOpt = None, classes: ClassesOpt = None, output_index: OutputIndexOpt = None,
    similar_to: SimilarOpt = None, mask: MaskOpt = None, text: TextOpt = None, foundation: dict = FOUNDATION_OPTIONS.default,
    with_classviz: Annotated[bool, typer.Option("--with-classviz", help="Add the engine's class visualization of the same class beside the maps.")] = False,
    classviz_steps: Annotated[Optional[int], typer.Option(help="Steps of the class visualization (default: the recipe's).")] = None,
    model: ModelOpt = DEFAULTS["model"], weights: WeightsOpt = "default", size: SizeOpt = 224,
    options: dict = METHOD_OPTIONS.default,
    device: DeviceOpt = "auto", out: OutOpt = Path("saliency.png"), overwrite: OverwriteOpt = False,
) -> None:
    """Explain IMAGE with several saliency methods: one labelled comparison figure (photo, then each
    method as a heatmap overlay) and each method's raw map as OUT-STEM-METHOD.npy. IMAGE may be a
    folder: then OUT-STEM/ gets one figure per photo, maps.npz (key PHOTO/METHOD) and targets.csv.
    A detector explains the detection on --box, or each detection above --min-score in turn
    (OUT-STEM-detN.png); a segmenter with --class explains the class where it is predicted (or in --mask)."""
    options = _options(options)
    if image.is_dir():
        from ..techniques.saliency_folder import explain_folder

        if any(v is not None for v in (classes, output_index, similar_to, mask, text or None,
                                       *foundation.values())):
            raise SynthvizError("--classes, --output-index, --similar-to, --mask, --text, --versus, --box, --min-score "
                                "and --output explain one photo; give a photo, not a folder (or use --class)")

        explain_folder(image, methods, target, model=model, weights=weights, size=size, device=device,
                       out=out.with_suffix(""), overwrite=overwrite, options=options, say=say)
        return
    prepare_outputs(out, inputs=[image])
    model = with_output(load_model(model, weights, device), foundation.get("output"))
    flags = dict(cls=target, classes_=classes, output=output_index, similar=similar_to, mask=mask, text=text,
                 versus=foundation.get("versus"))
    for job_target, job_out in _jobs(model, image, size, out, flags, foundation):
        _explain_one(model, image, methods, job_target, job_out, overwrite, weights=weights, size=size,
                     device=device, with_classviz=with_classviz, classviz_steps=classviz_steps, options=options)


def _jobs(model, image: Path, size: int, out: Path, flags: dict, foundation: dict) -> list[tuple]:
    """(target, figure path) for each explanation: one, except a detector without --box (each detection
    above --min-score: OUT-STEM-detN.png); a segmenter's --class alone is the class where it is predicted."""
    from ..detection_models import task_of
    from ..io import as_image

    found = detection_targets(model, image, size, flags["cls"], foundation, _other_flags(flags))
    if found is not None:
        if len(found) == 1:
            return [(found[0], out)]
        say(f"{len(found)} detections to explain")
        return [(t, out.with_name(f"{out.stem}-det{i + 1}{out.suffix}")) for i, t in enumerate(found)]
    task = task_of(model)
    if task == "segmentation" and flags["cls"] is not None and not _other_flags(flags):
        photo = as_image(image, size, batch=True)[:1]
        return [(targets.segment(model, photo, model.class_index(flags["cls"])), out)]
    return [(targets.from_options(model, **flags), out)]


_FLAGS = {"classes_": "--classes", "output": "--output-index", "similar": "--similar-to", "mask": "--mask",
          "text": "--text", "versus": "--versus"}


def _other_flags(flags: dict) -> list[str]:
    """The target flags given besides --class, as written on the command line."""
    return [_FLAGS[n] for n, v in flags.items() if n in _FLAGS and v is not None and v != []]


def _explain_one(model, image: Path, methods: str, target, out: Path, overwrite: bool, **kwargs) -> None:
    """One figure and its raw maps for ``target``; Ctrl-C saves the methods that finished (exit 130)."""
    from ..techniques.saliency_figure import figure_and_maps, save_maps

    try:
        result, attributions = figure_and_maps(model, image, methods, target, progress=True, **kwargs)
    except RenderInterrupted as stop:  # Ctrl-C: the figure and maps of the methods that finished
        with deferred_interrupt():
            say(f"interrupted: saved the {len(stop.extra)} finished method(s) to "
                f"{save_image(stop.result.figure, out, overwrite)}")
            save_maps(stop.extra, out, overwrite)
        raise typer.Exit(130) from None
    info = result.info
    if "cls" in info:
        say(f"{info['model']} class {info['cls']} '{info['label']}': probability {info['probability']:.3f}")
    else:
        say(f"{info['model']} {info['target']}: {info['value']:.4g}")
    ig = attributions.get("integrated_gradients")
    if ig is not None and ig.info["relative_gap"][0] > 0.05:
        say("note: the integrated-gradients completeness gap is above 5%; raise --steps")
    say(f"saved {save_image(result.figure, out, overwrite)}")
    for path in save_maps(attributions, out, overwrite):
        say(f"saved {path}")


@command(app, "sanity")
@METHOD_OPTIONS
@DETECTION_OPTIONS
def sanity_cmd(
    image: ImageArg,
    method: Annotated[str, typer.Option(help="The saliency method to check (see `synthviz saliency --help`).")] = "gradient",
    target: ClassOpt = None, detection: dict = DETECTION_OPTIONS.default,
    model: ModelOpt = DEFAULTS["model"], weights: WeightsOpt = "default", size: SizeOpt = 224,
    tile: Annotated[int, typer.Option(help="Height of each map in the figure.")] = 112,
    depth: Annotated[Optional[int], typer.Option(help="Randomize only the top DEPTH blocks (default: all).")] = None,
    options: dict = METHOD_OPTIONS.default, device: DeviceOpt = "auto", out: OutOpt = Path("sanity.png"), overwrite: OverwriteOpt = False,
) -> None:
    """Adebayo et al.'s sanity check: re-initialise the layers from the top down, recompute the map
    at each step, and plot its Spearman rank correlation with the original (figure + OUT-STEM.csv).
    A detector explains the detection on --box (of --class), else the best one scoring --min-score."""
    options = _options(options)
    prepare_outputs(out, inputs=[image])
    if wants_detection(model, detection):
        model = load_model(model, weights, device)
        found = detection_targets(model, image, size, target, detection)
        target = best_detection(found) if found is not None else target
    try:
        result = sanity(model, image, method=method, target=target, weights=weights, size=size, device=device,
                        depth=depth, tile=tile, progress=True, **options)
    except RenderInterrupted as stop:  # Ctrl-C: the figure of the steps that finished
        with deferred_interrupt():
            path = save_image(stop.result.figure, out, overwrite)
            _write_table(stop.result.info, out, overwrite)
        say(f"interrupted: saved the {len(stop.result.info['layers']) - 1} finished step(s) to {path}")
        raise typer.Exit(130) from None
    info = result.info
    corrs = info["correlations"]
    what = f"class {info['cls']} '{info['label']}'" if info["cls"] is not None else info["target"]
    say(f"{info['model']} {what}, {info['method']}: "
        f"rank correlation {corrs[1]:+.3f} after the top block, {corrs[-1]:+.3f} with every block randomized")
    say(f"saved {save_image(result.figure, out, overwrite)}")
    say(f"saved {_write_table(info, out, overwrite)}")


def _write_table(info: dict, out: Path, overwrite: bool) -> Path:
    """OUT-STEM.csv: step, the block randomized last, the rank correlation (through the atomic write)."""
    rows = ([i, layer_name, f"{corr:.6f}"] for i, (layer_name, corr) in enumerate(zip(info["layers"], info["correlations"])))
    return write_file(out.with_suffix(".csv"), csv_text(["step", "randomized_down_to", "spearman_abs"], rows), overwrite)
