"""Reading an indexed run back: its images, per-image features, per-unit statistics and top
examples with the patch each one came from."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from ..errors import SynthvizError, did_you_mean
from .receptive import ReceptiveField
from .sources import read_image
from .state import REMAKE, damaged, load_state, read_manifest
from .stats import UnitStats


@dataclass(frozen=True)
class Example:
    """One example of a unit: image ``index`` (``path``), its ``value``, the maximum's position in
    the layer's grid (``y``, ``x``; ``None`` for vectors and class tokens) and the input ``box``
    (top, left, bottom, right) in pixels of the ``size`` x ``size`` image that the patch is cut
    from. ``region`` says what the box is: ``"receptive field"`` (conv maps: the measured field
    around the maximum), ``"patch-grid cell"`` (token layers: the image patch of the token at the
    maximum), ``"class token (whole image)"`` or ``"whole image"`` (vectors). ``token``: the
    index of the token at the maximum in the layer's sequence (class tokens first), else None."""

    index: int
    path: str
    label: str
    value: float
    y: int | None
    x: int | None
    box: tuple[int, int, int, int]
    region: str = "receptive field"
    token: int | None = None


def locate(info: dict, size: int, position: int) -> tuple[int | None, int | None, tuple[int, int, int, int], str, int | None]:
    """Where a stored position is: ``(y, x, box, region, token)`` (see :class:`Example`) for a
    layer described by ``info`` (its manifest entry) on ``size`` x ``size`` images."""
    shape, tokens, whole = info["shape"], info.get("tokens"), (0, 0, size, size)
    if len(shape) == 3 and position >= 0:
        y, x = divmod(position, shape[2])
        return y, x, ReceptiveField(**info["receptive_field"]).box(y, x), "receptive field", None
    if len(shape) == 2 and tokens is not None and position >= 0:
        if position < tokens["prefix"]:
            return None, None, whole, "class token (whole image)", position
        y, x = divmod(position - tokens["prefix"], tokens["w"])
        ch, cw = size / tokens["h"], size / tokens["w"]
        box = (round(y * ch), round(x * cw), round((y + 1) * ch), round((x + 1) * cw))
        return y, x, box, "patch-grid cell", position
    return None, None, whole, "whole image", position if len(shape) == 2 and position >= 0 else None


class Run:
    """An indexed run folder (made by :func:`synthviz.dataset.index`)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        manifest = read_manifest(self.path, REMAKE) if self.path.is_dir() else None
        if manifest is None:
            raise SynthvizError(f"{self.path} is not an index (no manifest.json); make one with `synthviz index`")
        self.manifest = manifest
        if self.manifest.get("status") != "complete":
            raise SynthvizError(f"the index in {self.path} is unfinished; run the same `synthviz index` command to resume it")
        self.settings = self.manifest["settings"]
        self.size: int = self.settings["size"]
        try:
            with open(self.path / "images.csv", newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
            self.paths = [self._locate(r["path"]) for r in rows]
            self.labels = [r["label"] for r in rows]
        except (OSError, UnicodeDecodeError, KeyError, csv.Error):
            raise damaged(self.path, "images.csv cannot be read", REMAKE) from None

    def _locate(self, path: str) -> str:
        """An image path of the run. New runs store absolute paths; older ones stored them as given,
        relative to the folder the command ran in: that folder (if the image is there), else the
        folder holding the run folder (where `synthviz index DATA --out RUN` usually ran)."""
        if os.path.isabs(path) or os.path.exists(path):
            return path
        beside = self.path.absolute().parent / path
        return str(beside) if beside.exists() else path

    @property
    def layers(self) -> list[str]:
        return list(self.manifest["layers"])

    @property
    def model(self) -> str:
        return self.settings["model"]

    def check_layer(self, layer: str | None) -> str:
        """``layer`` if indexed (``None``: the first indexed layer)."""
        if layer is None:
            return self.layers[0]
        if layer not in self.manifest["layers"]:
            raise SynthvizError(f"layer '{layer}' is not in the index {self.path}{did_you_mean(layer, self.layers)}; "
                                f"indexed: {', '.join(self.layers)}")
        return layer

    def features(self, layer: str | None = None) -> np.ndarray:
        """(N, C) float32, memory-mapped: each image's reduced activation per unit (NaN rows: skipped)."""
        name = self.check_layer(layer)
        try:
            return np.load(self.path / "features" / f"{name}.npy", mmap_mode="r")
        except (OSError, ValueError):  # missing, or cut short (it no longer maps)
            raise damaged(self.path, f"features/{name}.npy cannot be read", REMAKE) from None

    @property
    def samples_per_image(self) -> int:
        """Activation samples kept per image (``synthviz index --samples-per-image``; 0: none)."""
        return int(self.settings.get("samples_per_image", 0))

    def samples(self, layer: str | None = None) -> dict[str, np.ndarray]:
        """The activation samples of ``layer`` (memory-mapped, see :mod:`synthviz.dataset.samples`):
        ``vectors`` (N, S, C), ``positions`` (N, S), ``attributions`` (N, S) to each image's
        ``predicted`` (N,) class (NaN rows / -1: skipped images)."""
        name = self.check_layer(layer)
        if not self.samples_per_image:
            raise SynthvizError(f"the index in {self.path} holds no activation samples; make it with "
                                "`synthviz index ... --samples-per-image 4` (a new --out, or --overwrite)")
        folder = self.path / "samples"
        try:
            return {"vectors": np.load(folder / f"{name}.npy", mmap_mode="r"),
                    "positions": np.load(folder / f"{name}.pos.npy", mmap_mode="r"),
                    "attributions": np.load(folder / f"{name}.attr.npy", mmap_mode="r"),
                    "predicted": np.load(folder / "predicted.npy", mmap_mode="r")}
        except (OSError, ValueError):
            raise damaged(self.path, f"the samples of {name} cannot be read", REMAKE) from None

    @cached_property
    def _state(self) -> dict:
        state = load_state(self.path, self.manifest["layers"], REMAKE)
        if state is None:
            raise damaged(self.path, "state.npz is missing", REMAKE)
        return state

    def stats(self, layer: str | None = None, relevance: bool = False) -> UnitStats:
        """The unit statistics of ``layer`` (``relevance``: of its RelMax relevances, see :attr:`relevance`)."""
        name = self.check_layer(layer)
        if relevance:
            from .relevance import relevance_key

            if self.relevance is None:
                raise SynthvizError(f"the index in {self.path} holds no relevances; make it with "
                                    "`synthviz index ... --relevance CLASS` (a new --out, or --overwrite)")
            name = relevance_key(name)
        try:
            return UnitStats.from_state(self._state, f"{name}::")
        except KeyError:
            raise damaged(self.path, f"state.npz holds no statistics of {name}", REMAKE) from None

    @property
    def relevance(self) -> dict | None:
        """``{"class": index, "name": ...}``: the class RelMax ranked images for (``--relevance``), or None."""
        return self.manifest.get("relevance")

    def receptive_field(self, layer: str | None = None) -> ReceptiveField:
        return ReceptiveField(**self.manifest["layers"][self.check_layer(layer)]["receptive_field"])

    def channels(self, layer: str | None = None) -> int:
        return int(self.manifest["layers"][self.check_layer(layer)]["channels"])

    @property
    def skipped(self) -> list[tuple[str, str]]:
        lines = (self.path / "skipped.txt").read_text(encoding="utf-8").splitlines()
        return [tuple(line.split("\t", 1)) for line in lines if line]

    def top_examples(self, layer: str | None, unit: int, k: int | None = None, bottom: bool = False,
                     relevance: bool = False) -> list[Example]:
        """The images that excite ``unit`` of ``layer`` most (``bottom``: least), best first (ActMax);
        ``relevance``: those where it carries most relevance for the run's class (RelMax; the value is
        its share of the image's relevance at the layer, the box around its most relevant position)."""
        layer = self.check_layer(layer)
        if not 0 <= unit < self.channels(layer):
            raise SynthvizError(f"unit {unit} is out of range for layer '{layer}' ({self.channels(layer)} channels)")
        s = self.stats(layer, relevance)
        values, images, positions = (s.bot_v, s.bot_i, s.bot_p) if bottom else (s.top_v, s.top_i, s.top_p)
        info = self.manifest["layers"][layer]
        out = []
        for rank in range(values.shape[1] if k is None else min(k, values.shape[1])):
            i, p = int(images[unit, rank]), int(positions[unit, rank])
            if i < 0:
                break
            y, x, box, region, token = locate(info, self.size, p)
            out.append(Example(i, self.paths[i], self.labels[i], float(values[unit, rank]), y, x, box, region, token))
        return out

    def image(self, index: int) -> torch.Tensor:
        """Image ``index`` as the pass saw it: (3, size, size) in [0, 1]."""
        return read_image(self.paths[index], self.size)

    def patch(self, example: Example) -> torch.Tensor:
        """The patch of an example (its ``box``: the receptive field, or a token's patch-grid cell), (3, h, w)."""
        top, left, bottom, right = example.box
        return self.image(example.index)[:, top:bottom, left:right]


def open_run(run: str | os.PathLike | Run) -> Run:
    return run if isinstance(run, Run) else Run(run)


def top_examples(run: str | os.PathLike | Run, layer: str | None, unit: int, k: int | None = None) -> list[Example]:
    """The top examples of ``unit`` of ``layer`` in an indexed run (see :meth:`Run.top_examples`)."""
    return open_run(run).top_examples(layer, unit, k)
