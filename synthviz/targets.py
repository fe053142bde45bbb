"""Targets: which scalar of a model's output to explain or to maximise.

A target is any function of the model's output to one value per image, ``output -> (B,)``. The
same targets drive saliency (``synthviz.saliency(model, x, target=...)``) and synthesis
(``objectives.target(...)``, ``synthviz.classviz(model, target)``)::

    from synthviz import targets as T
    T.class_index(285)                   # logit 285 (also a name: T.class_index(model.class_index("tabby")))
    T.classes([1, 5, 9])                 # multi-label: the sum of the chosen logits
    T.output_index(0)                    # a regression output (the flattened output's element 0)
    T.similar_to(model, "photo.png")     # cosine similarity of the embedding to the photo's embedding
    T.in_mask(3, mask)                   # segmentation: class 3's scores summed inside mask (H, W)
    T.Target(lambda out: out[:, 2] - out[:, 7], "2 minus 7")   # anything differentiable

A :class:`Target` is batched like the tensor of class indices it generalises: ``t[idx]`` and
``t.repeat(k)`` follow images through expanded batches (SmoothGrad copies, IG paths), so a
per-image class, reference or mask stays with its image.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from .errors import SynthvizError


def main_output(output) -> torch.Tensor:
    """A model's output tensor: ``out["out"]`` of a dict (torchvision segmentation), the first of a tuple."""
    if isinstance(output, dict):
        output = output["out"] if "out" in output else next(iter(output.values()))
    if isinstance(output, (tuple, list)):
        output = output[0]
    return output


class Target:
    """``output -> (B,)``, following its images through batch expansions.

    Args:
        fn: ``fn(output, rows)`` -> (B,); ``rows`` (B,) long says which original image each row of
            the output belongs to (for per-image classes, references, masks). A plain callable of
            the output alone is accepted too (``per_image=False``).
        name: a short label for captions and reports.
        classes: the class index per original image when the target is one logit (else None).
    """

    def __init__(self, fn: Callable, name: str = "target", *, per_image: bool = True,
                 classes: torch.Tensor | None = None, rows: torch.Tensor | None = None):
        self.fn, self.name, self.per_image, self.classes, self.rows = fn, name, per_image, classes, rows

    def __call__(self, output) -> torch.Tensor:
        out = main_output(output)
        rows = self.rows if self.rows is not None else torch.arange(len(out))
        value = self.fn(out, rows.to(out.device)) if self.per_image else self.fn(out)
        if value.dim() != 1 or len(value) != len(out):
            raise SynthvizError(f"target '{self.name}' gave shape {tuple(value.shape)}; a target returns one value "
                                f"per image, ({len(out)},)")
        return value

    def _with_rows(self, rows: torch.Tensor) -> "Target":
        return Target(self.fn, self.name, per_image=self.per_image, classes=self.classes, rows=rows)

    def for_batch(self, n: int) -> "Target":
        """This target for a batch of ``n`` original images (rows 0..n-1)."""
        return self._with_rows(torch.arange(n))

    def __getitem__(self, idx) -> "Target":
        return self._with_rows(self._base_rows()[torch.as_tensor(idx).cpu()])

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

    def tolist(self) -> list:
        """Class indices per image when the target is one logit, else the target's name per image."""
        rows = self._base_rows()
        if self.classes is not None:
            return self.classes[rows].tolist()
        return [self.name] * len(rows)

    def __repr__(self) -> str:
        return f"Target({self.name})"


def class_index(index: int | Sequence[int] | torch.Tensor) -> Target:
    """The logit of one class (an int), or of one class per image (a sequence / (B,) tensor)."""
    idx = torch.as_tensor(index, dtype=torch.long).flatten().cpu()

    def fn(out, rows):  # a (B, K, H, W) output: the class's score summed over the pixels
        cls = idx.to(out.device)[rows if len(idx) > 1 else torch.zeros_like(rows)]
        scores = out.flatten(2).sum(-1) if out.dim() > 2 else out
        return scores.gather(1, cls[:, None])[:, 0]

    name = f"class {idx.item()}" if len(idx) == 1 else "classes " + ",".join(map(str, idx.tolist()))
    per_row = idx if len(idx) > 1 else None
    t = Target(fn, name, classes=per_row)
    if per_row is None:
        t.classes = _Constant(int(idx.item()))
    return t


class _Constant:
    """``classes[rows]`` for a target whose class is the same for every image."""

    def __init__(self, value: int):
        self.value = value

    def __getitem__(self, rows: torch.Tensor) -> torch.Tensor:
        return torch.full((len(rows),), self.value, dtype=torch.long)


def classes(indices: Sequence[int]) -> Target:
    """Multi-label: the sum of the chosen logits ``Σ_k out[:, k]``."""
    idx = torch.as_tensor(list(indices), dtype=torch.long)
    if idx.numel() == 0:
        raise SynthvizError("no classes given; write them like --classes 1,5,9")
    return Target(lambda out, rows: out.flatten(1)[:, idx.to(out.device)].sum(1),
                  "sum of classes " + ",".join(map(str, idx.tolist())))


def output_index(index: int = 0) -> Target:
    """Element ``index`` of the flattened output: a regression head's value (``output_index(0)``)."""
    def fn(out, rows):
        flat = out.flatten(1)
        if not 0 <= index < flat.shape[1]:
            raise SynthvizError(f"output index {index} is out of range: the output has {flat.shape[1]} values")
        return flat[:, index]

    return Target(fn, f"output[{index}]")


def cosine(reference: torch.Tensor, name: str = "similarity") -> Target:
    """Cosine similarity of the flattened output to ``reference`` (1 or B, ...) embeddings."""
    ref = reference.detach().flatten(1)

    def fn(out, rows):
        r = ref.to(out)[rows if len(ref) > 1 else torch.zeros_like(rows)]
        return F.cosine_similarity(out.flatten(1), r, dim=1)

    return Target(fn, name)


def similar_to(model, image: torch.Tensor | str | os.PathLike) -> Target:
    """Cosine similarity of ``model``'s output (an embedding) to its output on ``image``
    (a path or a (1 or B, 3, H, W) tensor in [0, 1])."""
    from .io import load_image

    if isinstance(image, (str, os.PathLike)):
        if not os.path.exists(image):
            raise SynthvizError(f"reference image not found: {image}")
        x = load_image(image)
    else:
        x = image if image.dim() == 4 else image[None]
    with torch.no_grad():
        ref = main_output(model(x.to(model.device).float()))
    label = os.path.basename(str(image)) if isinstance(image, (str, os.PathLike)) else "the reference"
    return cosine(ref, f"similarity to {label}")


def in_mask(cls: int, mask: torch.Tensor | str | os.PathLike, reduce: str = "sum") -> Target:
    """Segmentation: class ``cls``'s scores (B, K, h, w) summed (or averaged, ``reduce="mean"``)
    over the pixels where ``mask`` (H, W), (B, H, W) or an image file, is on (> 0.5); the mask is
    resized to the output's (h, w)."""
    m = load_mask(mask) if isinstance(mask, (str, os.PathLike)) else torch.as_tensor(mask).float()
    m = m.reshape(-1, *m.shape[-2:])

    def fn(out, rows):
        if out.dim() != 4:
            raise SynthvizError(f"a mask target needs a segmentation output (B, K, H, W), not {tuple(out.shape)}")
        mm = F.interpolate(m[:, None].to(out), size=out.shape[-2:], mode="nearest")[:, 0]
        mm = mm[rows if len(mm) > 1 else torch.zeros_like(rows)]
        total = (out[:, cls] * mm).sum((1, 2))
        return total / mm.sum((1, 2)).clamp(min=1) if reduce == "mean" else total

    return Target(fn, f"class {cls} in mask")


def load_mask(path: str | os.PathLike) -> torch.Tensor:
    """A mask image -> (H, W) of 0/1 (grey level above half)."""
    from .io import load_image

    if not os.path.exists(path):
        raise SynthvizError(f"mask file not found: {path}")
    return (load_image(path).mean(1)[0] > 0.5).float()


def resolve(model, images: torch.Tensor, target=None) -> Target:
    """Any target spelling -> a :class:`Target` for ``images`` (B, 3, H, W).

    ``None``: the predicted class of a classifier's (B, K) output; output 0 of a single-output model;
    an int / class name / one per image: that logit; a :class:`Target` or any callable: as it is."""
    b = len(images)
    if isinstance(target, Target):
        return target.for_batch(b) if target.rows is None else target
    if callable(target) and not isinstance(target, torch.Tensor):
        return Target(target, getattr(target, "__name__", "target"), per_image=False).for_batch(b)
    if target is None:
        with torch.no_grad():
            out = main_output(model(images))
        if out.dim() == 2 and out.shape[1] == 1:
            return output_index(0).for_batch(b)
        if out.dim() != 2:
            raise SynthvizError(f"{model.name}'s output is {tuple(out.shape[1:])}, not class scores; give a target "
                                "(--output-index, --similar-to, --mask with --class)")
        return class_index(out.argmax(1).cpu()).for_batch(b)
    idx = class_indices(model, images, target)
    return class_index(idx if len(idx) > 1 else idx[0]).for_batch(b)


def class_indices(model, images: torch.Tensor, target) -> list[int]:
    """A class (index or name), a list or tensor of them (one, or one per image) -> checked class
    indices: one, or one per image of ``images`` (B, 3, H, W)."""
    b = len(images)
    if isinstance(target, torch.Tensor):
        target = target.flatten().tolist()
    if isinstance(target, (list, tuple)):
        if len(target) == 1:
            target = target[0]
        elif len(target) != b:
            raise SynthvizError(f"{len(target)} targets for {b} images; give one class or one per image")
    idx = [model.class_index(t) for t in target] if isinstance(target, (list, tuple)) else [model.class_index(target)]
    n = model.num_classes or main_output(model(images[:1])).shape[1]  # (B, K) or (B, K, H, W): K classes
    for i in idx:  # models without class names still get a range check
        if not 0 <= i < n:
            raise SynthvizError(f"class {i} is out of range for {model.name}: use 0..{n - 1}")
    return idx


def from_options(model, *, cls: int | str | None = None, classes_: str | Sequence[int] | None = None,
                 output: int | None = None, similar: str | os.PathLike | None = None,
                 mask: str | os.PathLike | None = None):
    """The CLI's target flags (``--class``, ``--classes``, ``--output-index``, ``--similar-to``,
    ``--mask`` with ``--class``) -> a target (None: the model's default)."""
    given = [n for n, v in (("--classes", classes_), ("--output-index", output), ("--similar-to", similar),
                            ("--mask", mask)) if v is not None]
    if len(given) > 1:
        raise SynthvizError(f"give one of {', '.join(given)}, not several")
    if mask is not None:
        if cls is None:
            raise SynthvizError("--mask needs --class: the segmentation class whose scores are summed in the mask")
        return in_mask(model.class_index(cls), mask)
    if given and cls is not None:
        raise SynthvizError(f"--class and {given[0]} are different targets; give one")
    if classes_ is not None:
        parts = classes_.split(",") if isinstance(classes_, str) else classes_
        return classes([model.class_index(p.strip() if isinstance(p, str) else p) for p in parts if str(p).strip()])
    if output is not None:
        return output_index(int(output))
    if similar is not None:
        return similar_to(model, similar)
    return cls
