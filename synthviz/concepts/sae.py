"""Sparse autoencoders over activations, small torch modules (as in ``overcomplete``, Fel et al.).

Every one encodes ``x`` (n, C) to pre-codes and codes ``z`` (n, K) ≥ 0 with a linear encoder
(after subtracting the decoder's bias), and decodes ``z @ D + b`` with a dictionary ``D`` (K, C)
of unit-norm atoms. They differ in how codes become sparse:

* ``sae``: ReLU, and an L1 penalty on the codes;
* ``topk``: keep the k largest codes of each sample (Gao et al. 2024);
* ``batchtopk``: keep the k·B largest codes of a batch of B (Bussmann et al. 2024); at inference
  a running threshold;
* ``jumprelu``: a learned threshold per code, trained through a straight-through estimator with
  a rectangle kernel, and an L0 penalty (Rajamanoharan et al. 2024);
* ``archetypal``: RA-TopK (Fel et al. 2025): TopK codes; atoms are convex combinations of data
  points (k-means centroids), plus a relaxation of norm at most δ, times a learnt scale.

Their hyper-parameters (penalty weights, the JumpReLU kernel, δ, ...) come from the
:class:`~synthviz.concepts.hyper.SAEHyper` each module is built with (:data:`SAE_DEFAULTS` unless set).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .hyper import SAE_DEFAULTS, SAEHyper
from .registry import register_dictionary


class SAE(nn.Module):
    """ReLU sparse autoencoder: ``z = relu(E(x - b))``, ``x̂ = z @ D + b``; loss MSE + L1·|z|."""

    def __init__(self, channels: int, concepts: int, k: int | None = None, hyper: SAEHyper = SAE_DEFAULTS):
        super().__init__()
        self.k, self.hyper = k, hyper
        d = F.normalize(torch.randn(concepts, channels), dim=1)
        self.atoms = nn.Parameter(d.clone())
        self.encoder = nn.Linear(channels, concepts)
        with torch.no_grad():  # tied start (Gao et al.)
            self.encoder.weight.copy_(d)
            self.encoder.bias.zero_()
        self.bias = nn.Parameter(torch.zeros(channels))

    def dictionary(self) -> torch.Tensor:
        """(K, C), unit-norm atoms."""
        return F.normalize(self.atoms, dim=1)

    def activate(self, pre: torch.Tensor) -> torch.Tensor:
        return F.relu(pre)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(pre-codes, codes), both (n, K), for ``x`` (n, C)."""
        pre = self.encoder(x - self.bias)
        return pre, self.activate(pre)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.dictionary() + self.bias

    def penalty(self, pre: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.hyper.l1_weight * z.abs().sum(1).mean()

    def loss(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, codes) of a batch ``x`` (n, C)."""
        pre, z = self.encode(x)
        error = (self.decode(z) - x).pow(2).sum(1).mean()
        return error + self.penalty(pre, z), z

    def start_from(self, x: torch.Tensor) -> None:
        """Data-dependent start: the decoder bias at the data's mean (before training)."""
        with torch.no_grad():
            self.bias.copy_(x.mean(0))


def top_k(codes: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` largest of each row of ``codes`` (n, K), zero the rest."""
    top = torch.topk(codes, min(k, codes.shape[1]), dim=1)
    return torch.zeros_like(codes).scatter(1, top.indices, top.values)


class TopKSAE(SAE):
    def activate(self, pre):
        return top_k(F.relu(pre), self.k)

    def penalty(self, pre, z):
        return pre.new_zeros(())


class BatchTopKSAE(TopKSAE):
    """Top k·B over a batch of B while training; a running threshold (``threshold_momentum``) afterwards."""

    def __init__(self, channels, concepts, k=None, hyper: SAEHyper = SAE_DEFAULTS):
        super().__init__(channels, concepts, k, hyper)
        self.register_buffer("threshold", torch.zeros(()))

    def activate(self, pre):
        codes = F.relu(pre)
        if self.training:
            flat = codes.flatten()
            cut = torch.topk(flat, min(self.k * len(codes), flat.numel())).values[-1].detach()
            with torch.no_grad():
                m = self.hyper.threshold_momentum
                self.threshold.copy_(cut if self.threshold == 0 else m * self.threshold + (1 - m) * cut)
        else:
            cut = self.threshold
        return codes * (codes >= cut).to(codes)


class _JumpReLU(torch.autograd.Function):
    """z = x·H(x - θ); ∂z/∂x = H(x - θ); ∂z/∂θ = -(θ/ε)·K((x - θ)/ε) (rectangle kernel K)."""

    @staticmethod
    def forward(ctx, x, theta, bandwidth):
        ctx.save_for_backward(x, theta)
        ctx.bandwidth = bandwidth
        return x * (x > theta).to(x)

    @staticmethod
    def backward(ctx, grad):
        x, theta = ctx.saved_tensors
        kernel = ((x - theta).abs() < ctx.bandwidth / 2).to(x) / ctx.bandwidth
        return grad * (x > theta).to(x), (-theta * kernel * grad).sum(0), None


class _Step(torch.autograd.Function):
    """H(x - θ) with ∂/∂θ = -K((x - θ)/ε)/ε: the L0 penalty's straight-through gradient."""

    @staticmethod
    def forward(ctx, x, theta, bandwidth):
        ctx.save_for_backward(x, theta)
        ctx.bandwidth = bandwidth
        return (x > theta).to(x)

    @staticmethod
    def backward(ctx, grad):
        x, theta = ctx.saved_tensors
        kernel = ((x - theta).abs() < ctx.bandwidth / 2).to(x) / ctx.bandwidth
        return None, (-kernel * grad).sum(0), None


class JumpReLUSAE(SAE):
    def __init__(self, channels, concepts, k=None, hyper: SAEHyper = SAE_DEFAULTS):
        super().__init__(channels, concepts, k, hyper)
        self.log_threshold = nn.Parameter(torch.full((concepts,), math.log(hyper.jump_threshold_start)))

    def activate(self, pre):
        return _JumpReLU.apply(F.relu(pre), self.log_threshold.exp(), self.hyper.jump_bandwidth)

    def penalty(self, pre, z):
        step = _Step.apply(F.relu(pre), self.log_threshold.exp(), self.hyper.jump_bandwidth)
        return self.hyper.l0_weight * step.sum(1).mean()


class ArchetypalSAE(TopKSAE):
    """RA-TopK: atoms = (row-stochastic W) @ points + relaxation (norm ≤ δ), times exp(m)."""

    def __init__(self, channels, concepts, k=None, points: torch.Tensor | None = None,
                 hyper: SAEHyper = SAE_DEFAULTS):
        super().__init__(channels, concepts, k, hyper)
        points = torch.randn(concepts, channels) if points is None else points
        self.register_buffer("points", points.float().clone())
        mix = torch.rand(concepts, len(points)) * 0.01
        mix[torch.arange(concepts), torch.arange(concepts) % len(points)] = 1.0
        self.mix = nn.Parameter(mix / mix.sum(1, keepdim=True))
        self.relax = nn.Parameter(torch.zeros(concepts, channels))
        # atoms start at unit mean norm, as the other SAEs' (the points are data, of any norm)
        self.log_scale = nn.Parameter(-points.norm(dim=1).mean().clamp_min(1e-6).log().reshape(()))
        self.bias.requires_grad_(False)  # x ≈ z @ D: the atoms are in the data's conical hull, no offset
        del self.atoms

    def dictionary(self):
        mix = F.relu(self.mix)
        mix = mix / (mix.sum(1, keepdim=True) + 1e-8)
        norm = self.relax.norm(dim=1, keepdim=True)
        relax = self.relax * torch.clamp(self.hyper.archetypal_delta / (norm + 1e-12), max=1.0)
        return (mix @ self.points + relax) * self.log_scale.exp()

    def start_from(self, x):
        with torch.no_grad():
            self.encoder.weight.copy_(F.normalize(self.dictionary(), dim=1))


@register_dictionary("sae", kind="sae", summary="ReLU sparse autoencoder with an L1 penalty")
def build_sae(channels: int, concepts: int, k: int | None = None, points=None,
              hyper: SAEHyper = SAE_DEFAULTS) -> SAE:
    return SAE(channels, concepts, k, hyper)


@register_dictionary("topk", kind="sae", summary="TopK sparse autoencoder: the k largest codes of each sample")
def build_topk(channels: int, concepts: int, k: int | None = None, points=None,
               hyper: SAEHyper = SAE_DEFAULTS) -> SAE:
    return TopKSAE(channels, concepts, k, hyper)


@register_dictionary("batchtopk", kind="sae", summary="BatchTopK: the k·B largest codes of a batch of B")
def build_batchtopk(channels: int, concepts: int, k: int | None = None, points=None,
                    hyper: SAEHyper = SAE_DEFAULTS) -> SAE:
    return BatchTopKSAE(channels, concepts, k, hyper)


@register_dictionary("jumprelu", kind="sae", summary="JumpReLU: learned thresholds (straight-through), L0 penalty")
def build_jumprelu(channels: int, concepts: int, k: int | None = None, points=None,
                   hyper: SAEHyper = SAE_DEFAULTS) -> SAE:
    return JumpReLUSAE(channels, concepts, k, hyper)


@register_dictionary("archetypal", kind="sae", needs_points=True,
                     summary="Archetypal SAE (RA-TopK): atoms in the convex hull of k-means centroids, relaxed by δ")
def build_archetypal(channels: int, concepts: int, k: int | None = None, points=None,
                      hyper: SAEHyper = SAE_DEFAULTS) -> SAE:
    return ArchetypalSAE(channels, concepts, k, points, hyper)
