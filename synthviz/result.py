"""The one result type every technique returns (and the engine's ``render`` too).

A :class:`Result` holds the images, one score and one label per image, optional frames and
per-step history, a JSON-serialisable ``info`` dict, and the one picture that stands for it
(``figure``: a grid, a panel, a comparison). ``save(path)`` writes that picture plus a sidecar
JSON; ``_repr_png_`` shows it inline in a notebook.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch


@dataclass
class Result:
    """What a technique (or a render) returns.

    Attributes:
        images: (B, 3, H, W) in [0, 1] on the CPU: the last good images.
        history: (T, B) the objective of each image at each step (empty when nothing was optimized).
        objective: a name for what was optimized or computed.
        steps: optimization steps taken. ``stopped``: ``None``, ``"early"``, ``"nan"`` or ``"interrupted"``.
        frames: (B, 3, H, W) images taken during the work, for a GIF/MP4.
        snapshots: {step: images} at the steps asked for.
        scores: (B,) one number per image (the final objective unless a technique sets its own).
        labels: one caption per image.
        figure: (3, H, W) the one picture standing for the result (a grid, a panel); ``None``:
            the image itself (B = 1) or a labelled grid of the batch.
        info: JSON-serialisable facts a technique adds (class, layer, metrics, a report line).
        extras: named secondary pictures (3, H, W) or (B, 3, H, W), e.g. the fooling image's
            magnified difference; ``save`` writes each as ``<stem>-<name>.png``.
        technique: the registered technique that made it.
        param, optimizer: the parameterization and optimizer, for warm starts (not saved).
    """

    images: torch.Tensor
    history: torch.Tensor = field(default_factory=lambda: torch.empty(0))
    objective: str = ""
    steps: int = 0
    stopped: str | None = None
    frames: list[torch.Tensor] = field(default_factory=list)
    snapshots: dict[int, torch.Tensor] = field(default_factory=dict)
    scores: torch.Tensor | None = None
    labels: list[str] = field(default_factory=list)
    figure: torch.Tensor | None = None
    info: dict = field(default_factory=dict)
    extras: dict[str, torch.Tensor] = field(default_factory=dict)
    technique: str = ""
    param: Any = None
    optimizer: Any = None

    @property
    def values(self) -> torch.Tensor:
        """The score per image, shape (B,): ``scores`` if set, else the objective at the last step."""
        if self.scores is not None:
            return self.scores
        return self.history[-1] if len(self.history) else torch.empty(0)

    @classmethod
    def concat(cls, results: list["Result"], objective: str | None = None) -> "Result":
        """Several renders of one technique as one result: images, scores, labels and frames
        side by side, history cut to the shortest; the first one's info."""
        first = results[0]
        if len(results) == 1:
            return first
        taken = min(len(r.history) for r in results)
        scored = all(r.scores is not None for r in results)
        return cls(torch.cat([r.images for r in results]),
                   torch.cat([r.history[:taken] for r in results], 1) if taken else torch.empty(0),
                   objective or first.objective, max(r.steps for r in results),
                   next((r.stopped for r in results if r.stopped), None),
                   [torch.cat(fs) for fs in zip(*[r.frames for r in results])],
                   scores=torch.cat([r.scores for r in results]) if scored else None,
                   labels=[label for r in results for label in r.labels], info=dict(first.info),
                   technique=first.technique, param=first.param, optimizer=first.optimizer)

    def picture(self) -> torch.Tensor:
        """(3, H, W): the figure, the single image, or a labelled grid of the batch."""
        if self.figure is not None:
            return self.figure[0] if self.figure.dim() == 4 else self.figure
        if len(self.images) == 1:
            return self.images[0]
        from .io import make_grid

        return make_grid(self.images, self.labels if len(self.labels) == len(self.images) else None)

    def to_dict(self) -> dict:
        """What the sidecar JSON holds: plain numbers and strings only."""
        return {"technique": self.technique, "objective": self.objective, "steps": int(self.steps),
                "stopped": self.stopped, "size": list(self.images.shape[-2:]), "count": len(self.images),
                "scores": [_number(v) for v in self.values.tolist()], "labels": list(self.labels),
                "info": plain(self.info)}

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the picture (PNG/JPEG by the suffix), each extra as ``<stem>-<name>.png`` and
        ``<stem>.json`` beside it; an existing file is never overwritten silently (a free name is
        used unless ``overwrite``). Returns the image's path."""
        from .io import save_image, write_file

        image_path = save_image(self.picture(), path, overwrite)
        for name, extra in self.extras.items():
            save_image(extra if extra.dim() == 3 or len(extra) > 1 else extra[0],
                       image_path.with_name(f"{image_path.stem}-{name}.png"), overwrite)
        write_file(image_path.with_suffix(".json"), json.dumps(self.to_dict(), indent=2) + "\n", overwrite)
        return image_path

    def _repr_png_(self) -> bytes:
        from .io import encode_image

        return encode_image(self.picture())


def _number(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def plain(value):
    """``value`` with everything JSON cannot hold left out: tensors of one number become floats,
    small tensors lists, images (and other large tensors) are dropped; NaN/inf become null."""
    if isinstance(value, dict):
        out = {str(k): plain(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not _SKIP}
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, torch.Tensor):
        return _number(value.item()) if value.numel() == 1 else (plain(value.tolist()) if value.numel() <= 64 else _SKIP)
    if isinstance(value, (list, tuple)):
        items = [plain(v) for v in value]
        return _SKIP if any(v is _SKIP for v in items) else items
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return plain(value.item())
    except ImportError:  # pragma: no cover
        pass
    return _SKIP


_SKIP = object()  # marks a value plain() leaves out
