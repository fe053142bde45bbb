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
"""

from __future__ import annotations

import torch

from ..layers import LOGITS, Tap
from ..models import Model
from ..tokens import spatial_view_and_back
from .dictionary import Dictionary

DESIGNS = 32  # N, the rows of A (and B): CRAFT's default
CHUNK = 64  # perturbed copies of an image per forward pass
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


def sobol_step(model: Model, dictionary: Dictionary, images: torch.Tensor, target: int | None = None,
               designs: int = DESIGNS, seed: int = 0):
    """One batch (B, 3, S, S): (coefficients (B, h·w, K), total Sobol indices (B, K) of the predicted
    class's logit (or class ``target``'s), classes (B,), the layer's grid (h, w))."""
    layer, k = dictionary.layer, dictionary.concepts
    images = images.to(model.device)
    with torch.no_grad(), model.evaluating(), Tap(model, [layer, LOGITS]) as tap:
        acts = tap(images)
    view, logits = acts[layer], acts[LOGITS]
    classes = logits.argmax(1) if target is None else torch.full((len(logits),), target, device=logits.device)
    a = (view.flatten(2).transpose(1, 2) if view.dim() > 2 else view[:, None]).float().cpu()  # stream.positions
    z = dictionary.encode(a.reshape(-1, a.shape[-1])).reshape(*a.shape[:2], -1)  # (B, h·w, K)
    masks = sobol_masks(k, designs, seed)
    scores = perturbed_scores(model, dictionary, images, z, tuple(view.shape[1:]), masks, classes.cpu())
    grid = tuple(view.shape[2:]) if view.dim() == 4 else (1, 1)
    return z, jansen_total(scores, designs, k).float(), classes.cpu(), grid


def perturbed_scores(model: Model, dictionary: Dictionary, images: torch.Tensor, z: torch.Tensor,
                     shape: tuple[int, ...], masks: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Class scores (B, M) of each image with its layer replaced by the reconstruction of its
    coefficients ``z`` (B, h·w, K) scaled by each mask (M, K); ``shape``: the layer's view (C, h, w) or (C,)."""
    layer = dictionary.layer
    hw = model.input_hw(images)
    nhwc = model.channels_last is not None and model.channels_last(layer)
    current: dict = {}

    def swap(raw: torch.Tensor) -> torch.Tensor:
        rebuild = spatial_view_and_back(raw, hw, model.prefix_tokens, nhwc)[1]
        return rebuild(current["view"].to(raw.device, raw.dtype), raw)

    out = torch.zeros(len(images), len(masks))
    with torch.no_grad(), model.evaluating(), Tap(model, [LOGITS], edit={layer: swap}) as tap:
        for i in range(len(images)):
            for start in range(0, len(masks), CHUNK):
                part = masks[start:start + CHUNK]  # (n, K)
                rebuilt = dictionary.decode((z[i][None] * part[:, None]).reshape(-1, z.shape[-1]))
                rebuilt = rebuilt.reshape(len(part), z.shape[1], -1)  # (n, h·w, C)
                current["view"] = rebuilt.transpose(1, 2).reshape(len(part), *shape) if len(shape) > 1 \
                    else rebuilt[:, 0]
                logits = tap(images[i:i + 1].expand(len(part), *images.shape[1:]))[LOGITS]
                out[i, start:start + len(part)] = logits[:, int(classes[i])].float().cpu()
    return out
