"""``synthviz models``, ``synthviz layers`` and ``synthviz classes``: what can be rendered."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..layers import layer_shapes
from ..cost import check_size
from ..errors import SynthvizError
from ..model_zoo import MODEL_SOURCES
from ..models import SOURCES, list_models, load_model
from ..tokens import describe_shape
from .app import app
from .common import DEFAULTS, DeviceOpt, ModelArg, WeightsOpt, command


@command(app, "models")
def models_cmd() -> None:
    """List the models: the embedded default (works offline) first, then torchvision's classifiers."""
    names = list_models()
    for name in names:  # described as every --model help describes them (model_zoo.MODEL_SOURCES)
        typer.echo(f"{name}  ({MODEL_SOURCES[name][1]})" if name in MODEL_SOURCES else name)
    for key in SOURCES.names():  # the prefixed sources (timm:NAME...); torchvision's are listed by name above
        if key in MODEL_SOURCES and key != "torchvision":
            form, line, _ = MODEL_SOURCES[key]
            typer.echo(f"{form}  ({line})")


@command(app, "layers")
def layers_cmd(
    model: ModelArg = DEFAULTS["model"],
    size: Annotated[int, typer.Option(help="Input size used to compute the shapes.")] = 224,
    weights: WeightsOpt = "random",
    device: DeviceOpt = "cpu",
) -> None:
    """Print every layer name of MODEL with its output shape (C, H, W) at --size; a transformer's
    token layers as (N, C) with the grid they come from (``14×14 + 1 class token``). The first
    lines (``# ...``) say what the output is and which field is explained, the CAM layer and the
    prefix tokens."""
    m = load_model(model, weights=weights, device=device)
    check_size(m, size)
    hw = m.input_size or (size, size)
    _print_facts(m, size)
    for name, shape in layer_shapes(m, size):
        nhwc = m.channels_last is not None and m.channels_last(name)
        typer.echo(f"{name:48s} {describe_shape(shape, hw, m.prefix_tokens, nhwc)}")


def _print_facts(m, size: int) -> None:
    """``# output: ...``, ``# CAM layer: ...``, ``# prefix tokens: ...``: what the family defaults to."""
    from ..hf_models import output_facts
    from ..layers import default_layer

    try:
        cam = default_layer(m, "gradcam")
    except SynthvizError as e:
        cam = f"none ({e})"
    prefix = m.prefix_tokens
    tokens = ("none (no token layers)" if prefix is None else
              f"{prefix} before the patch tokens (class, distillation, registers)")
    typer.echo(f"# output: {output_facts(m, size)}")
    typer.echo(f"# CAM layer: {cam}")
    typer.echo(f"# prefix tokens: {tokens}")


@command(app, "classes")
def classes_cmd(
    model: ModelArg = DEFAULTS["model"],
    grep: Annotated[Optional[str], typer.Option(help="Only classes whose name contains this.")] = None,
) -> None:
    """Print the class indices and names of MODEL."""
    m = load_model(model, weights="random", device="cpu")
    for i, name in enumerate(m.classes or []):
        if grep is None or grep.lower() in name.lower():
            typer.echo(f"{i:5d}  {name}")
