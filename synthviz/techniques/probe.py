"""Neuron probing: render channels or neurons of a layer, many units in one batched optimization."""

from __future__ import annotations

from collections.abc import Sequence

from ..checks import choice, positive
from ..cost import check_size
from ..engine import RenderInterrupted
from ..errors import BadValue
from ..layers import LOGITS, check_unit, layer_shape, parse_units
from ..models import DEFAULT_MODEL, ModelLike, load_model
from ..objectives import channel, neuron
from ..recipes import check_options, visualize
from ..result import Result
from .registry import register_technique


@register_technique("probe", example={"layer": "_blocks.3", "units": "0-1", "size": 64, "steps": 3})
def probe(model: ModelLike = DEFAULT_MODEL, layer: str = "_blocks.8", units: str | int | Sequence[int] | None = 0, *,
          weights: str = "default", kind: str = "channel", x: int | None = None, y: int | None = None,
          recipe: str = "lucid", size: int = 128, steps: int | None = None, lr: float | None = None,
          batch_size: int = 16, canvas: int | None = None, crops: int = 1, seed: int | None = 0,
          device: str | None = None, progress: bool | str = False, frame_every: int = 0) -> Result:
    """Render channels (``kind="channel"``) or neurons (``kind="neuron"``, at ``x``, ``y``; default the
    centre) of ``layer``. ``units``: one index, a list, ``"0,3,8-11"`` or ``"all"``/``None``.

    ``canvas``: the ``maco`` recipe's canvas side (default twice the model's input, at most 512 px;
    the images are the whole canvas). ``crops``: views per step (default 1; see ``classviz``).

    Units are rendered ``batch_size`` at a time, each batch element optimizing its own unit.
    Returns a :class:`~synthviz.result.Result` with one image per unit, labelled by unit
    (``picture()`` is the labelled grid); ``info["units"]`` holds the unit indices.
    """
    choice("kind", kind, ("channel", "neuron"))
    if kind != "neuron" and (x is not None or y is not None):
        raise BadValue("x and y place a neuron; add --neuron (kind='neuron') or leave them out")
    batch_size = positive("batch_size", batch_size, integer=True)
    check_options(steps, lr, 1, size, recipe, canvas, crops)
    if isinstance(units, str) and units != "all":
        parse_units(units, 1 << 30)  # the syntax now, the range once the layer is known
    m = load_model(model, weights, device)
    check_size(m, size, min(batch_size, 16))
    shape = layer_shape(m, layer, size) if layer != LOGITS else (m.num_classes,)
    chosen = parse_units(units, shape[0])
    if kind == "neuron":
        check_unit(m, layer, chosen[0], size, x, y)
    results: list[Result] = []
    try:
        _render_chunks(results, m, chosen, layer, kind, x, y, batch_size, size, recipe, steps, lr, seed, device,
                       progress, frame_every, dict(canvas=canvas, crops=crops))
    except RenderInterrupted as stop:  # Ctrl-C: the finished chunks and the one in progress, labelled
        partial = _assemble(results + [stop.result], chosen, layer, kind, m)
        partial.stopped = "interrupted"
        raise RenderInterrupted(partial) from None
    return _assemble(results, chosen, layer, kind, m)


def _render_chunks(results, m, chosen, layer, kind, x, y, batch_size, size, recipe, steps, lr, seed, device,
                   progress, frame_every, canvas_options) -> None:
    for start in range(0, len(chosen), batch_size):
        chunk = chosen[start : start + batch_size]
        make = (lambda c, i: neuron(layer, c, x, y, batch=i)) if kind == "neuron" else (lambda c, i: channel(layer, c, batch=i))
        objective = sum(make(c, i) for i, c in enumerate(chunk))
        label = f"{layer} {start + 1}-{start + len(chunk)}/{len(chosen)}" if len(chosen) > 1 else objective.name
        results.append(visualize(m, objective, batch=len(chunk), size=size, recipe=recipe, steps=steps, lr=lr,
                                 seed=seed, device=device, progress=label if progress else False,
                                 frame_every=frame_every, **canvas_options))


def _assemble(results: list[Result], chosen: list[int], layer: str, kind: str, m) -> Result:
    result = Result.concat(results, f"{kind}s of {layer}")
    chosen = chosen[: len(result.images)]
    result.labels = [f"{layer} ch {c}" for c in chosen]
    result.info.update(units=chosen, layer=layer, kind=kind, model=m.name)
    return result
