"""``synthviz classviz`` and ``synthviz probe``: feature visualization of classes, channels and neurons."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .. import targets
from ..errors import SynthvizError
from ..hf_models import with_output
from ..models import load_model
from ..techniques.classviz import classviz
from ..techniques.probe import probe
from .app import app
from .common import (DEFAULTS, ClassesOpt, DeviceOpt, LrOpt, MaskOpt, ModelOpt, OutOpt, OutputFieldOpt, OutputIndexOpt,
                     OverwriteOpt, SeedOpt, SimilarOpt, SizeOpt, StepsOpt, TextOpt, VersusOpt, VideoOpt, WeightsOpt,
                     command, frame_every, prepare_outputs, run_render, say)

ClassOpt = Annotated[Optional[str], typer.Option("--class", "-c", help="Class index or name (with --mask: the segmentation class).")]
CanvasOpt = Annotated[Optional[int], typer.Option(help="maco: the canvas side in px, the picture saved (default twice the model's input, at most 512).")]
CropsOpt = Annotated[Optional[int], typer.Option(help="Views per step, value averaged: random crops (70-100% of the area, random flips), or for maco crops of the canvas. Default: 4 for lucid and 6 for classic class renders, else 1. Each costs one pass.")]
RecipeOpt = Annotated[str, typer.Option(help="lucid (Fourier + decorrelated colour + robustness), classic (pixels + L2 + blur + jitter) or maco (phase only under a natural amplitude spectrum, random crops: for transformers).")]


@command(app, "classviz")
def classviz_cmd(
    target: Annotated[Optional[str], typer.Argument(help="Class index or name, e.g. 285 or 'Egyptian cat' (default 285).")] = None,
    cls: ClassOpt = None, classes: ClassesOpt = None, output_index: OutputIndexOpt = None,
    similar_to: SimilarOpt = None, mask: MaskOpt = None, text: TextOpt = None, versus: VersusOpt = None,
    output: OutputFieldOpt = None,
    each: Annotated[Optional[str], typer.Option("--each", help="Several classes, one image of each, rendered in one batch, e.g. goldfish,flamingo,volcano.")] = None,
    model: ModelOpt = DEFAULTS["model"], weights: WeightsOpt = "default", recipe: RecipeOpt = "lucid",
    size: SizeOpt = 128, steps: StepsOpt = None, lr: LrOpt = None, canvas: CanvasOpt = None, crops: CropsOpt = None,
    score: Annotated[str, typer.Option(help="logit (raw score) or logprob.")] = "logit",
    seed: SeedOpt = 0, device: DeviceOpt = "auto", out: OutOpt = Path("classviz.png"), video: VideoOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Render an image the model sees as class TARGET, or that maximises another target of its output:
    several classes in one image (--classes 1,5,9), one image of each (--each 1,5,9), a regression
    output (--output-index 0), the similarity of an embedding to a photo's (--similar-to PHOTO), a
    segmentation class inside a mask (--mask M --class C), what a CLIP model sees as a prompt
    (--model open_clip:ARCH --text "a red bicycle", --versus "a blue bicycle" for the contrast), a
    field of a structured output (--output pooler_output)."""
    prepare_outputs(out, video)
    if target is not None and cls is not None:
        raise SynthvizError("give the class once: as TARGET or as --class")
    others = [f for f, v in (("TARGET", target), ("--class", cls), ("--classes", classes), ("--output-index", output_index),
                             ("--similar-to", similar_to), ("--mask", mask), ("--text", text or None)) if v is not None]
    if each is not None and others:
        raise SynthvizError(f"--each names the classes itself; drop {others[0]}")
    m = with_output(load_model(model, weights, device), output)
    if each is not None:
        tgt = [p.strip() for p in each.split(",") if p.strip()]
    else:
        tgt = targets.from_options(m, cls=target or cls, classes_=classes, output=output_index, similar=similar_to,
                                   mask=mask, text=text, versus=versus)
        tgt = "285" if tgt is None else tgt
    result = run_render(classviz, out, video, overwrite, target=tgt, model=m, weights=weights, recipe=recipe,
                        size=size, steps=steps, lr=lr, score=score, canvas=canvas, crops=crops, seed=seed, device=device, progress=True,
                        frame_every=frame_every(video, steps))
    info = result.info
    if isinstance(info.get("cls"), list):
        for c, label, p in zip(info["cls"], info["label"], info["probability"]):
            say(f"{info['model']} class {c} '{label}': probability {p:.3f}")
    elif "cls" in info:
        say(f"{info['model']} class {info['cls']} '{info['label']}': probability {info['probability'][0]:.3f}")
    else:
        say(f"{info['model']} {info['target']}: {info['start'][0]:.4g} at the start, {info['value'][0]:.4g} at the end")


@command(app, "probe")
def probe_cmd(
    layer: Annotated[str, typer.Argument(help="Layer name (see `synthviz layers`).")],
    units: Annotated[str, typer.Argument(help="Channel indices: 3, 0,3,8-11 or all.")] = "0",
    neuron: Annotated[bool, typer.Option("--neuron", help="Render the neuron at --x/--y (default: centre) instead of the whole channel.")] = False,
    x: Annotated[Optional[int], typer.Option(help="Neuron column in the layer's grid.")] = None,
    y: Annotated[Optional[int], typer.Option(help="Neuron row in the layer's grid.")] = None,
    batch_size: Annotated[int, typer.Option(help="Units optimized together in one batch.")] = 16,
    model: ModelOpt = DEFAULTS["model"], weights: WeightsOpt = "default", recipe: RecipeOpt = "lucid",
    size: SizeOpt = 128, steps: StepsOpt = None, lr: LrOpt = None, canvas: CanvasOpt = None, crops: CropsOpt = 1,
    seed: SeedOpt = 0, device: DeviceOpt = "auto", out: OutOpt = Path("probe.png"), video: VideoOpt = None, overwrite: OverwriteOpt = False,
) -> None:
    """Render channels or neurons of LAYER; several units make one labelled grid image."""
    prepare_outputs(out, video)
    result = run_render(probe, out, video, overwrite, layer=layer, units=units,
                        kind="neuron" if neuron else "channel", x=x, y=y, batch_size=batch_size, model=model,
                        weights=weights, recipe=recipe, size=size, steps=steps, lr=lr, canvas=canvas, crops=crops,
                        seed=seed, device=device,
                        progress=True, frame_every=frame_every(video, steps))
    say(f"{len(result.info['units'])} unit(s) of {layer}: mean objective {result.values.mean():.4g}")
