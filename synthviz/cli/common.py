"""What every command shares: options with the Python API's defaults, one-line errors,
saving with no silent overwrite, Ctrl-C that keeps the image as it stands."""

from __future__ import annotations

import functools
import inspect
import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from ..engine import RenderInterrupted
from ..errors import SynthvizError
from ..io import IMAGE_SUFFIXES, VIDEO_SUFFIXES, check_writable, deferred_interrupt, save_image, save_video
from ..io.writing import check_bit_depth
from ..model_zoo import model_help
from ..models import DEFAULT_MODEL
from ..result import Result

# The model help is generated from the registered sources (synthviz.model_zoo.MODEL_SOURCES): one description
# (escaped: Typer reads help as rich markup, where "synthviz[timm]" would lose its "[timm]").
ModelOpt = Annotated[str, typer.Option("--model", "-m", help=escape(model_help()))]
ModelArg = Annotated[str, typer.Argument(help=escape(model_help()))]
ClassOpt = Annotated[Optional[str], typer.Option("--class", "-c", help="Class index or name to explain (default: the predicted class).")]
WeightsOpt = Annotated[str, typer.Option(help="'default' (pretrained), 'random', or a local checkpoint path.")]
SizeOpt = Annotated[int, typer.Option(help="Image side in pixels.")]
StepsOpt = Annotated[Optional[int], typer.Option(help="Optimization steps (default: the recipe's).")]
LrOpt = Annotated[Optional[float], typer.Option(help="Learning rate (default: the recipe's).")]
SeedOpt = Annotated[int, typer.Option(help="Random seed: the same seed gives the same image.")]
DeviceOpt = Annotated[str, typer.Option(help="auto (CUDA when present), cpu or cuda[:N].")]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Output image (PNG). An existing file is never overwritten: a free name is used.")]
VideoOpt = Annotated[Optional[Path], typer.Option(help="Also save the optimization as a GIF or MP4.")]
OverwriteOpt = Annotated[bool, typer.Option(help="Overwrite existing output files.")]
# Targets beyond one class (synthviz.targets): shared by saliency and classviz.
ClassesOpt = Annotated[Optional[str], typer.Option("--classes", help="Several classes at once (multi-label): the sum of their logits, e.g. 1,5,9.")]
OutputIndexOpt = Annotated[Optional[int], typer.Option("--output-index", help="Element of the flattened output (a regression model: 0).")]
SimilarOpt = Annotated[Optional[Path], typer.Option("--similar-to", help="Cosine similarity of the output (an embedding) to this photo's.")]
TextOpt = Annotated[Optional[list[str]], typer.Option("--text", help="CLIP models (open_clip:ARCH): cosine similarity of the image embedding with this prompt's text embedding; repeat for one prompt per image.")]
MaskOpt = Annotated[Optional[Path], typer.Option("--mask", help="Segmentation: sum --class's scores inside this mask image (white = in).")]
VersusOpt = Annotated[Optional[list[str]], typer.Option("--versus", help="With --text: a contrast, the similarity with --text minus the similarity with this prompt.")]
BoxOpt = Annotated[Optional[str], typer.Option("--box", help="Detection: x1,y1,x2,y2 in pixels; explains the detection (of --class) overlapping it most, IoU + score (IoU must be > 0.5).")]
MinScoreOpt = Annotated[Optional[float], typer.Option("--min-score", help="Detection without --box: explain each detection scoring at least this, in turn (default 0.5).")]
OutputFieldOpt = Annotated[Optional[str], typer.Option("--output", help="The field of a structured output to explain: logits, pooler_output, image_embeds, last_hidden_state, out, aux... or a tuple position (0); default: the family's own (synthviz layers prints it).")]
# Foundation models' targets and outputs (hf:, open_clip:, detectors, segmenters), declared once.
FOUNDATION_OPTIONS_ARGS = {"output": (OutputFieldOpt, None), "versus": (VersusOpt, None), "box": (BoxOpt, None),
                           "min_score": (MinScoreOpt, None)}

DEFAULTS = {"model": DEFAULT_MODEL, "weights": "default", "seed": 0, "device": "auto"}


def say(message: str) -> None:
    typer.echo(message, err=True)


def command(app: typer.Typer, *args, **kwargs):
    """``@command(app)``: register a command whose user errors print one line (exit 2) and whose
    warnings (greyscale input converted, NaN stop) print as notes."""

    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*a, **kw):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    return fn(*a, **kw)
                except SynthvizError as e:
                    say(f"error: {e}")
                    raise typer.Exit(2) from None
                finally:
                    shown = set()
                    for w in caught:
                        message = " ".join(str(w.message).split())
                        if message not in shown and not issubclass(
                                w.category, (DeprecationWarning, FutureWarning, ResourceWarning)):
                            shown.add(message)  # once: several chunks of one run may warn alike
                            say(f"note: {message}")

        return app.command(*args, **kwargs)(wrapper)

    return deco


class OptionSet:
    """Options shared by several commands, declared once. A command takes them all through one
    parameter named ``into`` (a dict of their values); decorating it with the set puts the
    options in that parameter's place in its signature, so each appears in ``--help`` as usual::

        METHOD = OptionSet("options", samples=(SamplesOpt, None), noise=(NoiseOpt, None))

        @command(app, "saliency")
        @METHOD
        def saliency_cmd(image: ImageArg, options: dict = METHOD.default, out: OutOpt = ...): ...
    """

    default: dict = {}  # the placeholder default of the ``into`` parameter (replaced by the options)

    def __init__(self, into: str, **options: tuple[object, object]):
        self.into = into
        self.options = options  # name -> (Annotated[type, typer.Option(...)], default)

    def __call__(self, fn):
        signature = inspect.signature(fn, eval_str=True)
        if self.into not in signature.parameters:
            raise TypeError(f"{fn.__name__} has no parameter '{self.into}' to receive the options")
        params = []
        for p in signature.parameters.values():
            if p.name != self.into:
                params.append(p)
                continue
            params += [inspect.Parameter(name, p.kind, default=default, annotation=annotation)
                       for name, (annotation, default) in self.options.items()]

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            values = {name: kwargs.pop(name) for name in self.options if name in kwargs}
            return fn(*args, **kwargs, **{self.into: values})

        wrapper.__signature__ = signature.replace(parameters=params)
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper


FOUNDATION_OPTIONS = OptionSet("foundation", **FOUNDATION_OPTIONS_ARGS)
# A detector's box target alone (with --class): the commands that explain one target (sanity, evaluate, attack-map).
DETECTION_OPTIONS = OptionSet("detection", **{k: FOUNDATION_OPTIONS_ARGS[k] for k in ("box", "min_score")})


def wants_detection(model, detection: dict) -> bool:
    """True when a command explains a box target: --box or --min-score given, or ``model`` names a
    torchvision detector (then the command loads it to find its detections; other models load in
    the library, after its checks)."""
    from ..detection_models import DETECTION_PREFIXES

    return any(v is not None for v in detection.values()) or (
        isinstance(model, str) and model.startswith(DETECTION_PREFIXES))


def detection_targets(model, image, size: int, cls, detection: dict, others=()) -> list | None:
    """The box targets a command explains on IMAGE (a path or tensor, at longer side ``size``) from
    --box, --class and --min-score (``detection``: {"box", "min_score"}), best first: the one on
    --box, else each detection scoring at least --min-score (0.5; the detector's own threshold is
    lowered to it). None when ``model`` is no detector and neither --box nor --min-score is given.
    ``others``: the other target flags given (refused in one line). None qualifies: one line."""
    from .. import targets
    from ..detection_models import keep_scores_from, task_of
    from ..io import as_image

    box, min_score = detection.get("box"), detection.get("min_score")
    task = task_of(model)
    if box is None and min_score is None and task != "detection":
        return None
    if others:
        raise SynthvizError(f"a detector's target is --box and/or --class (and --min-score); drop {others[0]}")
    index = model.class_index(cls) if cls is not None else None
    if min_score is not None and task == "detection":
        keep_scores_from(model, min_score)
    photo = as_image(image, size, batch=True)[:1]
    return targets.detections(model, photo, box, index, 0.5 if min_score is None else min_score)


def best_detection(found: list):
    """The first of :func:`detection_targets` (best first), for a command that explains one: says which."""
    if len(found) > 1:
        say(f"{len(found)} detections qualify; explaining the best: {found[0].name}")
    return found[0]


def prepare_outputs(out: Path, video: Path | None = None, inputs=()) -> None:
    """Check output paths before any work, so a bad --out fails in a second, not after a render."""
    check_writable(out, IMAGE_SUFFIXES, inputs)
    if video is not None:
        check_writable(video, VIDEO_SUFFIXES, inputs)


def run_render(fn, out: Path, video: Path | None = None, overwrite: bool = False, image=None, bit_depth: int = 8,
               **kwargs) -> Result:
    """Run a technique, save its picture (or ``image(result)``, at ``bit_depth`` bits: 8, or 16 for
    PNG and TIFF) and video; on Ctrl-C save what stands."""
    check_bit_depth(bit_depth, out)  # before the render, not after it
    try:
        result = fn(**kwargs)
    except RenderInterrupted as stop:
        with deferred_interrupt():  # a second Ctrl-C does not cut the save short
            path = save_image((image or Result.picture)(stop.result), out, overwrite, bit_depth)
        say(f"interrupted: saved the image as it stood to {path}")
        raise typer.Exit(130) from None
    path = save_image((image or Result.picture)(result), out, overwrite, bit_depth)
    say(f"saved {path}")
    if video is not None and result.frames:
        from ..io import make_grid

        frames = [make_grid(f) if len(f) > 1 else f[0] for f in result.frames]
        say(f"saved {save_video(frames, video, overwrite=overwrite)}")
    return result  # a NaN stop is reported once, by the engine's warning (printed as a note)


def frame_every(video: Path | None, steps: int | None, default_steps: int = 256) -> int:
    """Frames for a video: about 60 over the render, none without --video."""
    return max(1, (steps or default_steps) // 60) if video is not None else 0
