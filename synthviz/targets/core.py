"""The :class:`Target` and the class targets: a logit (:func:`class_index`) and the prediction
(:func:`predicted`), read when the output is known."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import torch

from ..errors import BadValue, SynthvizError


def main_output(output) -> torch.Tensor:
    """A model's output tensor: ``out["out"]`` of a dict (torchvision segmentation), the first of a tuple."""
    if isinstance(output, dict):
        output = output["out"] if "out" in output else next(iter(output.values()))
    if isinstance(output, (tuple, list)):
        output = output[0]
    return output


def _takes_rows(fn: Callable) -> bool:
    """True when ``fn`` has two required positional parameters, ``fn(output, rows)``."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: called with the output alone
        return False
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(p.kind in kinds and p.default is inspect.Parameter.empty for p in params) >= 2


class Target:
    """``output -> (B,)``, following its images through batch expansions.

    Args:
        fn: ``fn(output)`` -> (B,), or ``fn(output, rows)`` where ``rows`` (B,) long says which
            original image each row of the output belongs to (for per-image classes, references,
            masks). Which form is read from ``fn``'s signature unless ``per_image`` says it.
        name: a short label for captions and reports.
        classes: the class index per original image when the target is one logit (``classes[rows]``).
    """

    def __init__(self, fn: Callable, name: str = "target", *, per_image: bool | None = None,
                 classes=None, rows: torch.Tensor | None = None):
        self.fn, self.name, self.classes, self.rows = fn, name, classes, rows
        self.per_image = _takes_rows(fn) if per_image is None else per_image
        self._rows_on: dict = {}  # the rows on each device the target ran on (one copy each)

    def __call__(self, output) -> torch.Tensor:
        out = main_output(output)
        if not isinstance(out, torch.Tensor):
            raise BadValue(f"target '{self.name}' reads a tensor, not the {type(out).__name__} this model returns; "
                           "a detector needs a box target (--box, --min-score; targets.box)")
        n = out.shape[0]  # (not len(): a tensor's len is slow, and this runs at every forward)
        value = self.fn(out, self._device_rows(n, out.device)) if self.per_image else self.fn(out)
        if not isinstance(value, torch.Tensor) or value.dim() != 1 or value.shape[0] != n:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise SynthvizError(f"target '{self.name}' gave {shape}; a target returns one value per image, ({n},)")
        return value

    def _device_rows(self, n: int, device) -> torch.Tensor:
        if self.rows is None:
            return torch.arange(n, device=device)
        if device not in self._rows_on:
            self._rows_on[device] = self.rows.to(device)
        return self._rows_on[device]

    def _with_rows(self, rows: torch.Tensor) -> "Target":
        return Target(self.fn, self.name, per_image=self.per_image, classes=self.classes, rows=rows)

    def for_batch(self, n: int) -> "Target":
        """This target for a batch of ``n`` original images (rows 0..n-1)."""
        if isinstance(self.classes, torch.Tensor) and len(self.classes) != n:
            raise BadValue(f"{len(self.classes)} targets for {n} images; give one class or one per image")
        return self._with_rows(torch.arange(n))

    def __getitem__(self, idx) -> "Target":
        rows = self._base_rows()
        if isinstance(idx, slice):
            return self._with_rows(rows[idx])
        idx = torch.as_tensor(idx).cpu()
        return self._with_rows(rows[idx.reshape(1) if idx.dim() == 0 else idx])

    def repeat(self, k: int) -> "Target":
        return self._with_rows(self._base_rows().repeat(k))

    def _base_rows(self) -> torch.Tensor:
        if self.rows is None:
            raise SynthvizError(f"target '{self.name}' has no batch yet; call .for_batch(n) first")
        return self.rows

    def __len__(self) -> int:
        return len(self._base_rows())

    def to(self, device) -> "Target":
        return self

    @property
    def is_class(self) -> bool:
        """True when the target is one class's score per image (it has a class and a probability)."""
        return self.classes is not None

    @property
    def pending(self) -> bool:
        """True while the target still needs to see an output to know its classes (:func:`predicted`)."""
        return False

    def class_ids(self) -> torch.Tensor:
        """(B,) long on the CPU: the class explained for each row."""
        if not self.is_class:
            raise BadValue(f"target '{self.name}' is not one class per image; this needs a class "
                           "(an index or a name)")
        return self.classes[self._base_rows()]

    def tolist(self) -> list:
        """Class indices per image when the target is one logit, else the target's name per image."""
        return self.class_ids().tolist() if self.is_class else [self.name] * len(self._base_rows())

    def __repr__(self) -> str:
        return f"Target({self.name})"


def _class_scores(out: torch.Tensor) -> torch.Tensor:
    """(B, K) class scores; a (B, K, H, W) segmentation output's scores summed over the pixels."""
    return out.flatten(2).sum(-1) if out.dim() > 2 else out if out.dim() == 2 else out.reshape(out.shape[0], -1)


def _check_classes(lo: int, hi: int, k: int, owner: str) -> None:
    """Classes ``lo..hi`` must be outputs of a K-class output."""
    if lo < 0 or hi >= k:
        raise BadValue(f"class {lo if lo < 0 else hi} is out of range for {owner}: its output has {k} "
                       f"classes, use 0..{k - 1}")


class _Constant:
    """``classes[rows]`` for a target whose class is the same for every image."""

    def __init__(self, value: int):
        self.value = value

    def __getitem__(self, rows: torch.Tensor) -> torch.Tensor:
        return torch.full((len(rows),), self.value, dtype=torch.long)


def class_index(index: int | Sequence[int] | torch.Tensor, owner: str = "the model") -> Target:
    """The logit of one class (an int), or of one class per image (a sequence / (B,) tensor); a
    (B, K, H, W) output's class scores are summed over the pixels. ``owner`` names the model in
    the error for a class beyond its output."""
    idx = torch.as_tensor(index, dtype=torch.long).flatten().cpu()
    if idx.numel() == 0:
        raise BadValue("no class given; pass an index such as 285 or a name such as 'tabby'")
    lo, hi, one = int(idx.min()), int(idx.max()), len(idx) == 1
    on_device: dict = {}

    def fn(out, rows):
        scores = _class_scores(out)
        _check_classes(lo, hi, scores.shape[1], owner)
        if out.device not in on_device:
            on_device[out.device] = idx.to(out.device)
        cls = on_device[out.device]
        cls = cls.expand(rows.shape[0]) if one else cls[rows]
        return scores.gather(1, cls[:, None])[:, 0]

    name = f"class {lo}" if one else "classes " + ",".join(map(str, idx.tolist()))
    return Target(fn, name, per_image=True, classes=_Constant(lo) if one else idx)


class _Prediction:
    """The predicted class of each image of a batch, read from the first output that shows that
    image and kept: later outputs (occluded, noisy, augmented copies) are scored for the same class.
    Nothing is written in place: each reading replaces the stored tensors with new ones."""

    def __init__(self):
        self.classes = torch.zeros(0, dtype=torch.long)
        self.known = torch.zeros(0, dtype=torch.bool)

    def read(self, scores: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """(B, K) scores and their rows (B,) on the CPU -> the class of each row (B,) on the scores' device."""
        grow = (int(rows.max()) + 1 if len(rows) else 0) - len(self.known)
        if grow > 0:
            self.classes = torch.cat([self.classes, torch.zeros(grow, dtype=torch.long)])
            self.known = torch.cat([self.known, torch.zeros(grow, dtype=torch.bool)])
        known = self.known[rows]
        stored = self.classes[rows].to(scores.device)
        if bool(known.all()):
            return stored
        cls = torch.where(known.to(scores.device), stored, scores.detach().argmax(1))
        new = ~known
        self.classes = self.classes.index_put((rows[new],), cls.cpu()[new])
        self.known = self.known.index_put((rows[new],), torch.ones(int(new.sum()), dtype=torch.bool))
        return cls

    def seen(self, rows: torch.Tensor) -> bool:
        return len(rows) == 0 or (int(rows.max()) < len(self.known) and bool(self.known[rows].all()))

    def __getitem__(self, rows: torch.Tensor) -> torch.Tensor:
        if not self.seen(rows):
            raise SynthvizError("the predicted class is not known before the model's output is seen; "
                                "call the target on the output first")
        return self.classes[rows]


class _Predicted(Target):
    """The predicted class (argmax of the (B, K) output) of each image, fixed at the first output seen."""

    def __init__(self, owner: str = "the model", rows: torch.Tensor | None = None, memo: _Prediction | None = None):
        self.memo, self.owner = memo if memo is not None else _Prediction(), owner
        self._read = None  # (the memo's classes tensor, device, this target's classes there) once all are known
        super().__init__(self._score, "predicted class", per_image=False, classes=self.memo, rows=rows)

    def _score(self, out: torch.Tensor) -> torch.Tensor:
        if out.dim() != 2:
            raise BadValue(f"{self.owner}'s output is {tuple(out.shape[1:])}, not class scores; give a target "
                           "(--output-index, --similar-to, --mask with --class)")
        ready = self._read
        if ready is not None and ready[0] is self.memo.classes and ready[1] == out.device:
            cls = ready[2]  # every row known and nothing read since: no lookup per call
        else:
            rows = self.rows if self.rows is not None else torch.arange(len(out))
            cls = self.memo.read(out, rows)
            if self.rows is not None:
                self._read = (self.memo.classes, out.device, cls)
        return out.gather(1, cls[:, None])[:, 0]

    def _with_rows(self, rows: torch.Tensor) -> Target:
        return _Predicted(self.owner, rows, self.memo)  # the same images: the same reading

    def for_batch(self, n: int) -> Target:
        return _Predicted(self.owner, torch.arange(n))  # new images: a new reading

    @property
    def pending(self) -> bool:
        return not self.memo.seen(self._base_rows() if self.rows is not None else torch.arange(0))


def predicted(owner: str = "the model") -> Target:
    """The predicted class of each image: the argmax of the first (B, K) output the target is given
    (and of that image's later outputs: the class stays the same). ``tolist()`` gives the classes."""
    return _Predicted(owner)
