"""Colour for painting: histogram and mean/covariance matching, luminance and chroma (kornia's YCbCr)."""

from __future__ import annotations

import torch

from ..io import resize


def match_histogram(image: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Give each colour channel of ``image`` (1, 3, H, W) the value distribution of ``reference``
    (1, 3, H', W') by rank (exact histogram specification). Returns (1, 3, H, W)."""
    out = torch.empty_like(image)
    for c in range(image.shape[1]):
        src = image[0, c].flatten()
        ref = reference[0, c].flatten().sort().values.to(src)
        pos = torch.linspace(0, ref.numel() - 1, src.numel(), device=src.device)
        lo = pos.floor().long().clamp(max=ref.numel() - 1)
        hi = (lo + 1).clamp(max=ref.numel() - 1)
        values = torch.lerp(ref[lo], ref[hi], pos - lo)
        flat = torch.empty_like(src)
        flat[src.argsort()] = values
        out[0, c] = flat.view_as(image[0, c])
    return out


def _sqrtm(cov: torch.Tensor, power: float) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(cov)
    return vecs @ torch.diag(vals.clamp_min(1e-6) ** power) @ vecs.T


def match_color(image: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Affine colour transfer: ``image``'s RGB mean and covariance become ``reference``'s
    (Gatys et al. 2016, "Preserving colour"). (1, 3, H, W) -> (1, 3, H, W) in [0, 1]."""
    x, r = image[0].reshape(3, -1).double(), reference[0].reshape(3, -1).double().to(image.device)
    mx, mr = x.mean(1, keepdim=True), r.mean(1, keepdim=True)
    cx, cr = torch.cov(x) + 1e-5 * torch.eye(3, dtype=x.dtype, device=x.device), torch.cov(r) + 1e-5 * torch.eye(3, dtype=x.dtype, device=x.device)
    a = _sqrtm(cr, 0.5) @ _sqrtm(cx, -0.5)
    return (a @ (x - mx) + mr).float().reshape_as(image).clamp(0, 1)


def luminance(image: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 3, H, W): the luma Y (BT.601) repeated in three channels."""
    from kornia.color import rgb_to_ycbcr

    return rgb_to_ycbcr(image)[:, :1].expand(-1, 3, -1, -1).contiguous()


def with_chroma(image: torch.Tensor, chroma_of: torch.Tensor) -> torch.Tensor:
    """The luma of ``image`` with the chroma (Cb, Cr) of ``chroma_of`` (resized to fit). Both (1, 3, H, W)."""
    from kornia.color import rgb_to_ycbcr, ycbcr_to_rgb

    chroma_of = resize(chroma_of.to(image), tuple(image.shape[-2:]))
    y = rgb_to_ycbcr(image)[:, :1]
    return ycbcr_to_rgb(torch.cat([y, rgb_to_ycbcr(chroma_of)[:, 1:]], 1)).clamp(0, 1)


def chroma(image: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 2, H, W): the Cb, Cr channels."""
    from kornia.color import rgb_to_ycbcr

    return rgb_to_ycbcr(image)[:, 1:]
