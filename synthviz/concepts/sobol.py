"""CRAFT's concept importance (Fel et al. 2023): total Sobol indices of a class score over the
concept coefficients.

For an image whose layer activations factor as A ≈ U · W (coefficients U (h·w, K), the dictionary
W (K, C)), each concept's coefficients are scaled by a mask value m_k ∈ [0, 1] (the same at every
position), the layer's activations are replaced by the perturbed reconstruction (U ⊙ m) · W (plus
the dictionary's bias and scale) and the rest of the network gives the class score f(m). The masks
are a quasi-Monte-Carlo design (a scrambled Sobol sequence, ``torch.quasirandom.SobolEngine``, of
dimension 2K split into the matrices A and B, and the K matrices C_i: A with column i from B;
``designs`` · (K + 2) forward passes per image), and the total index of concept i is Jansen's
estimator ``Σ_n (f(A_n) - f(C_i,n))² / (2 N Var f(A))`` (as xplique's ``JansenEstimator``): the
share of the score's variance concept i accounts for, its interactions included. For a score
linear in the coefficients it is ``a_i² / Σ_j a_j²`` (a_i: concept i's contribution at m = 1).

The perturbed copies of an image run in head passes (:func:`perturbed_scores`): the network below
the layer runs once per :data:`CHUNK` copies. ``concept-map`` scores one image with
:func:`sobol_step`; a concepts run averages it over a few images of each class
(:mod:`synthviz.concepts.importance`).
"""

from __future__ import annotations

import contextlib

import torch

from ..layers import LOGITS, Tap
from ..models import Model
from ..tokens import spatial_view_and_back
from .dictionary import Dictionary

DESIGNS = 32  # N, the rows of A (and B): CRAFT's default
CHUNK = 64  # perturbed copies of an image per head pass
EPS = 1e-12


def sobol_masks(concepts: int, designs: int = DESIGNS, seed: int = 0) -> torch.Tensor:
    """Masks (designs · (K + 2), K) in [0, 1]: the rows of A, then B, then C_1 ... C_K."""
    k = concepts
    points = torch.quasirandom.SobolEngine(2 * k, scramble=True, seed=seed).draw(designs).float()  # (N, 2K)
    a, b = points[:, :k], points[:, k:]
    c = a[None].repeat(k, 1, 1)  # (K, N, K)
    idx = torch.arange(k)
    c[idx, :, idx] = b[:, idx].T  # C_i = A with column i taken from B
    return torch.cat([a, b, c.reshape(-1, k)])


def jansen_total(outputs: torch.Tensor, designs: int, concepts: int) -> torch.Tensor:
    """Scores (..., designs · (K + 2)) of the masks of :func:`sobol_masks` -> total indices (..., K)."""
    n = designs
    outputs = outputs.double()
    a = outputs[..., :n]
    c = outputs[..., 2 * n:].reshape(*outputs.shape[:-1], concepts, n)
    var = a.var(-1).clamp_min(EPS)
    return ((a[..., None, :] - c) ** 2).sum(-1) / (2 * n * var[..., None])


def sobol_step(model: Model, dictionary: Dictionary, images: torch.Tensor,
               target: int | torch.Tensor | None = None, designs: int = DESIGNS, seed: int = 0):
    """One batch (B, 3, S, S): (coefficients (B, h·w, K), total Sobol indices (B, K) of the predicted
    class's logit (or class ``target``'s: an int, or one class per image (B,)), classes (B,), the
    layer's grid (h, w)). Every image gets the same masks (``seed``), so an image's indices do not
    depend on the batch it is in, up to float rounding."""
    layer, k = dictionary.layer, dictionary.concepts
    images = images.to(model.device)
    with torch.no_grad(), model.evaluating(), Tap(model, [layer, LOGITS]) as tap:
        acts = tap(images)
    view, logits = acts[layer], acts[LOGITS]
    if target is None:
        classes = logits.argmax(1)
    else:
        classes = torch.as_tensor(target, dtype=torch.long, device=logits.device).expand(len(logits))
    a = (view.flatten(2).transpose(1, 2) if view.dim() > 2 else view[:, None]).float().cpu()  # stream.positions
    z = dictionary.encode(a.reshape(-1, a.shape[-1])).reshape(*a.shape[:2], -1)  # (B, h·w, K)
    masks = sobol_masks(k, designs, seed)
    scores = perturbed_scores(model, dictionary, images, z, tuple(view.shape[1:]), masks, classes.cpu())
    grid = tuple(view.shape[2:]) if view.dim() == 4 else (1, 1)
    return z, jansen_total(scores, designs, k).float(), classes.cpu(), grid


def perturbed_scores(model: Model, dictionary: Dictionary, images: torch.Tensor, z: torch.Tensor,
                     shape: tuple[int, ...], masks: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Class scores (B, M) of each image with its layer replaced by the reconstruction of its
    coefficients ``z`` (B, h·w, K) scaled by each mask (M, K); ``shape``: the layer's view (C, h, w) or (C,).

    Head passes: up to :data:`CHUNK` perturbed copies of an image go through the network at once,
    but the network below the layer runs on one of them only (see :func:`_scores`); what skips the
    layer from below is the same for every copy and broadcasts. A network where that fails or
    changes the scores is caught on the first chunk, checked against full passes of two copies,
    and then runs full passes (below the layer too, once per copy)."""
    m = len(masks)
    out = torch.zeros(len(images), m)
    head = None  # whether head passes give the full passes' scores (checked on the first chunk)
    with torch.no_grad(), model.evaluating():
        for i in range(len(images)):
            for start in range(0, m, CHUNK):
                part = masks[start:start + CHUNK]  # (n, K)
                rebuilt = dictionary.decode((z[i][None] * part[:, None]).reshape(-1, z.shape[-1]))
                rebuilt = rebuilt.reshape(len(part), z.shape[1], -1)  # (n, h·w, C)
                view = rebuilt.transpose(1, 2).reshape(len(part), *shape) if len(shape) > 1 else rebuilt[:, 0]
                copies, c = images[i:i + 1].expand(len(part), *images.shape[1:]), int(classes[i])
                if head is None and len(part) > 1:
                    full = _scores(model, dictionary.layer, copies[:2], view[:2], c, head=False)
                    with contextlib.suppress(RuntimeError):
                        found = _scores(model, dictionary.layer, copies, view, c, head=True)
                        head = found.shape == (len(part),) and torch.allclose(found[:2], full, rtol=1e-4, atol=1e-4)
                    head = bool(head)
                out[i, start:start + len(part)] = _scores(model, dictionary.layer, copies, view, c, head=bool(head))
    return out


def _scores(model: Model, layer: str, images: torch.Tensor, view: torch.Tensor, c: int, head: bool) -> torch.Tensor:
    """Class ``c``'s logits (n,) of ``images`` (n, 3, H, W) with ``layer``'s output replaced by ``view``
    (n, ...) (its spatial view). ``head``: the n images are copies of one; every module below the
    layer gets only the first row of its input (the network's forward still sees a batch of n, as
    its own reshapes expect), and the layer's output is replaced by the n rows of ``view``."""
    hw = model.input_hw(images)
    nhwc = model.channels_last is not None and model.channels_last(layer)
    below = {"now": head}

    def swap(raw: torch.Tensor) -> torch.Tensor:
        below["now"] = False
        rebuild = spatial_view_and_back(raw, hw, model.prefix_tokens, nhwc)[1]
        raw = raw.expand(len(view), *raw.shape[1:]) if len(raw) != len(view) else raw
        return rebuild(view.to(raw.device, raw.dtype), raw)

    def first_row(module, args):
        if below["now"] and args and isinstance(args[0], torch.Tensor) and args[0].dim() and len(args[0]) == len(view):
            return (args[0][:1], *args[1:])
        return None

    hooks = [mod.register_forward_pre_hook(first_row) for name, mod in model.net.named_modules() if name] if head else []
    try:
        with Tap(model, [LOGITS], edit={layer: swap}) as tap:
            return tap(images)[LOGITS][:, c].float().cpu()
    finally:
        for hook in hooks:
            hook.remove()
