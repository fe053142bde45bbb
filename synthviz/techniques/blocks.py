"""The building blocks of one image's decision (Olah et al., Distill 2018; see
:mod:`synthviz.dataset.blocks`): neuron groups by NMF, their pictures, maps and attribution, and
the semantic dictionary."""

from __future__ import annotations

import os

import torch

from ..errors import SynthvizError
from ..models import DEFAULT_MODEL, ModelLike, load_model
from ..result import Result
from .common import ImageLike
from .registry import register_technique


@register_technique("blocks", example={"image": "skimage:chelsea", "layer": "_blocks.5", "groups": 2,
                                       "size": 32, "steps": 2, "image_size": 64, "dictionary_units": 2})
def blocks(model: ModelLike = DEFAULT_MODEL, image: ImageLike | None = None, *, layer: str | None = None,
           groups: int = 6, target: int | str | None = None, size: int = 64, steps: int = 64, image_size: int = 224,
           top: int = 3, dictionary_units: int = 24, html: str | None = None, overwrite: bool = False,
           seed: int = 0) -> Result:
    """``image``'s activations at ``layer`` factorised into ``groups`` neuron groups (NMF): each
    group's picture (``size`` px, ``steps`` steps), its map over the photo and its attribution to
    ``target`` (default: the predicted class); the figure shows maps over icons. ``html``: also write
    the page with the semantic dictionary (each position's ``top`` units) there."""
    from ..dataset.blocks import blocks_page, building_blocks, panels
    from ..io import as_image, make_grid, write_file
    from ..layers import default_layer

    if image is None:
        raise SynthvizError("blocks needs a photo: a file or a (1, 3, H, W) tensor")
    m = load_model(model)
    photo = as_image(image, image_size, min_side=m.min_size)
    layer = layer or default_layer(m, "mid")
    found = building_blocks(m, photo, layer, groups=groups, cls=None if target is None else m.class_index(target),
                            size=size, steps=steps, top=top, dictionary_units=dictionary_units, seed=seed)
    name = m.class_name(found["class"])
    overlays, icons, captions = panels(photo, found, name)
    figure = make_grid(torch.cat([overlays, icons]), [f"map {i}" for i in range(groups)] + captions, ncol=groups)
    if html is not None:
        write_file(html, blocks_page(photo, found, layer, name, overlays, captions), overwrite=overwrite)
    return Result(images=found["icons"], labels=captions, figure=figure, technique="blocks",
                  scores=torch.from_numpy(found["attribution"]).float(), objective=f"nmf({layer})",
                  info={"layer": layer, "class": found["class"], "class_name": name, "groups": groups,
                        "attribution": found["attribution"].tolist(),
                        "html": None if html is None else os.fspath(html)})
