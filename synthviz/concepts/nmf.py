"""NMF over activations (CRAFT, Fel et al. 2023): ``A ≈ U · W`` with coefficients ``U ≥ 0``.

On a layer whose activations are non-negative (after a ReLU) both factors are non-negative:
scikit-learn's ``NMF`` with the ``nndsvda`` start. Where the layer has negative values (a linear
bottleneck, a transformer's LayerNorm output) the concept bank ``W`` may be signed: semi-NMF
(Ding, Li & Jordan 2010), started from the NMF of the positive part, then alternating the least
squares ``W`` and the multiplicative update of ``U``. New activations are encoded against a fixed
``W`` by the same update (non-negative least squares), so both cases share one encoder.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from ..errors import SynthvizError
from .registry import register_dictionary


def sklearn_nmf(x: np.ndarray, concepts: int, seed: int, iters: int) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's NMF (``nndsvda`` start) of non-negative ``x`` (n, C): (coefficients (n, K),
    components (K, C)) as float32; the one NMF fit of the concepts and the building blocks."""
    try:
        from sklearn.decomposition import NMF
    except ImportError:
        raise SynthvizError('NMF needs scikit-learn: pip install "synthviz[concepts]"') from None
    nmf = NMF(concepts, init="nndsvda", max_iter=iters, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: the iterations are the user's choice
        u = nmf.fit_transform(x)
    return torch.from_numpy(u).float(), torch.from_numpy(nmf.components_).float()


def _pos(m: torch.Tensor) -> torch.Tensor:
    return (m.abs() + m) / 2


def _neg(m: torch.Tensor) -> torch.Tensor:
    return (m.abs() - m) / 2


def _update_codes(xw: torch.Tensor, ww: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """One multiplicative update of ``u`` (n, K) ≥ 0 for ``x`` (n, C) ≈ u @ w, given ``xw = x @ w.T``
    and ``ww = w @ w.T`` (semi-NMF's rule; with x, w ≥ 0 it is Lee & Seung's)."""
    return u * torch.sqrt((_pos(xw) + u @ _neg(ww)) / (_neg(xw) + u @ _pos(ww) + 1e-9))


def _least_squares(u: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """W (K, C) minimising ||x - u W||² (ridge 1e-6 for unused concepts)."""
    gram = u.T @ u
    gram = gram + 1e-6 * gram.diagonal().mean().clamp_min(1e-12) * torch.eye(len(gram), dtype=u.dtype)
    return torch.linalg.solve(gram, u.T @ x)


def semi_nmf(x: torch.Tensor, concepts: int, seed: int = 0, iters: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    """Semi-NMF of ``x`` (S, C), signed: ``(U (S, K) ≥ 0, W (K, C))``."""
    u, _ = sklearn_nmf(x.clamp_min(0).numpy(), concepts, seed, 100)
    u = u.double() + 0.2 * u.mean()  # a code at exactly 0 would never move under the multiplicative rule
    xd = x.double()
    for _ in range(iters):
        w = _least_squares(u, xd)
        u = _update_codes(xd @ w.T, w @ w.T, u)
    return u.float(), _least_squares(u, xd).float()


def nnls_codes(x: torch.Tensor, atoms: torch.Tensor, iters: int = 100) -> torch.Tensor:
    """Coefficients (n, K) ≥ 0 of ``x`` (n, C) against fixed ``atoms`` (K, C): non-negative least
    squares by multiplicative updates from the clipped unconstrained solution."""
    x, w = x.double(), atoms.double()
    u = (x @ torch.linalg.pinv(w)).clamp_min(0) + 1e-3 * x.abs().mean()
    xw, ww = x @ w.T, w @ w.T
    for _ in range(iters):
        u = _update_codes(xw, ww, u)
    return u.float()


@register_dictionary("nmf", kind="nmf", summary="NMF of the activations (CRAFT); semi-NMF where the layer has negative values")
def fit_nmf(x: torch.Tensor, concepts: int, seed: int = 0) -> tuple[torch.Tensor, dict]:
    """NMF of ``x`` (S, C) (semi-NMF when it has negative values): ``(atoms (K, C), facts)``."""
    if concepts > min(x.shape):
        raise SynthvizError(f"NMF of {x.shape[1]} channels over {x.shape[0]} samples cannot have {concepts} concepts; "
                            f"use --concepts {min(x.shape)} or fewer")
    if float(x.min()) >= 0:
        return sklearn_nmf(x.numpy(), concepts, seed, 500)[1], {"semi": False}
    return semi_nmf(x, concepts, seed)[1], {"semi": True}
