"""``synthviz classviz`` and ``synthviz probe``: feature visualization of classes, channels and neurons."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..techniques.classviz import classviz
from ..techniques.probe import probe
from .app import app
from .common import (DEFAULTS, DeviceOpt, LrOpt, ModelOpt, OutOpt, OverwriteOpt, SeedOpt, SizeOpt, StepsOpt,
                     VideoOpt, WeightsOpt, command, frame_every, prepare_outputs, run_render, say)

RecipeOpt = Annotated[str, typer.Option(help="lucid (Fourier + decorrelated colour + robustness) or classic (pixels + L2 + blur + jitter).")]


@command(app, "classviz")
def classviz_cmd(
    target: Annotated[str, typer.Argument(help="Class index or name, e.g. 285 or 'Egyptian cat'.")] = "285",
    model: ModelOpt = DEFAULTS["model"], weights: WeightsOpt = "default", recipe: RecipeOpt = "lucid",
    size: SizeOpt = 128, steps: StepsOpt = None, lr: LrOpt = None,
    score: Annotated[str, typer.Option(help="logit (raw score) or logprob.")] = "logit",
    seed: SeedOpt = 0, device: DeviceOpt = "auto", out: OutOpt = Path("classviz.png"), video: VideoOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Render an image the model sees as class TARGET."""
    prepare_outputs(out, video)
    result = run_render(classviz, out, video, overwrite, target=target, model=model, weights=weights, recipe=recipe,
                        size=size, steps=steps, lr=lr, score=score, seed=seed, device=device, progress=True,
                        frame_every=frame_every(video, steps))
    info = result.info
    say(f"{info['model']} class {info['cls']} '{info['label']}': probability {info['probability'][0]:.3f}")


@command(app, "probe")
def probe_cmd(
    layer: Annotated[str, typer.Argument(help="Layer name (see `synthviz layers`).")],
    units: Annotated[str, typer.Argument(help="Channel indices: 3, 0,3,8-11 or all.")] = "0",
    neuron: Annotated[bool, typer.Option("--neuron", help="Render the neuron at --x/--y (default: centre) instead of the whole channel.")] = False,
    x: Annotated[Optional[int], typer.Option(help="Neuron column in the layer's grid.")] = None,
    y: Annotated[Optional[int], typer.Option(help="Neuron row in the layer's grid.")] = None,
    batch_size: Annotated[int, typer.Option(help="Units optimized together in one batch.")] = 16,
    model: ModelOpt = DEFAULTS["model"], weights: WeightsOpt = "default", recipe: RecipeOpt = "lucid",
    size: SizeOpt = 128, steps: StepsOpt = None, lr: LrOpt = None, seed: SeedOpt = 0, device: DeviceOpt = "auto",
    out: OutOpt = Path("probe.png"), video: VideoOpt = None, overwrite: OverwriteOpt = False,
) -> None:
    """Render channels or neurons of LAYER; several units make one labelled grid image."""
    prepare_outputs(out, video)
    result = run_render(probe, out, video, overwrite, layer=layer, units=units,
                        kind="neuron" if neuron else "channel", x=x, y=y, batch_size=batch_size, model=model,
                        weights=weights, recipe=recipe, size=size, steps=steps, lr=lr, seed=seed, device=device,
                        progress=True, frame_every=frame_every(video, steps))
    say(f"{len(result.info['units'])} unit(s) of {layer}: mean objective {result.values.mean():.4g}")
