"""Optimizers the engine can use, by name: ``adam``, ``lbfgs``, ``sgd`` and normalised
gradient steps (``l2step`` for fooling images, ``meanabs`` for DeepDream, ``sign`` for PGD)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from .registry import Registry

OPTIMIZERS: Registry[Callable[..., torch.optim.Optimizer]] = Registry(
    "optimizer", "use adam, lbfgs, sgd, l2step, meanabs or sign")


class NormalizedStep(torch.optim.Optimizer):
    """Gradient descent with the step normalised per batch element: ``x -= lr · g / ‖g‖``.

    ``norm``: ``"l2"`` (Szegedy's fooling step), ``"mean_abs"`` (DeepDream) or ``"sign"`` (FGSM/PGD).
    """

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1.0, norm: str = "l2"):
        super().__init__(params, {"lr": lr, "norm": norm})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if group["norm"] == "sign":
                    d = g.sign()
                else:
                    flat = g.reshape(g.shape[0], -1)
                    n = flat.norm(dim=1) if group["norm"] == "l2" else flat.abs().mean(1)
                    d = g / (n.view(-1, *[1] * (g.dim() - 1)) + 1e-12)
                p.add_(d, alpha=-group["lr"])
        return loss


OPTIMIZERS.register("adam")(lambda params, lr: torch.optim.Adam(params, lr=lr))
OPTIMIZERS.register("sgd")(lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9))
# One L-BFGS iteration per engine step, its state carried across steps; up to 20 evaluations for
# the line search (with max_iter=1 torch would allow just one, and a rejected trial stalls it for
# good); no tolerance stop: the engine's step count decides when to stop.
OPTIMIZERS.register("lbfgs")(lambda params, lr: torch.optim.LBFGS(
    params, lr=lr, max_iter=1, max_eval=20, history_size=50, tolerance_grad=0.0, tolerance_change=0.0,
    line_search_fn="strong_wolfe"))
OPTIMIZERS.register("l2step")(lambda params, lr: NormalizedStep(params, lr, "l2"))
OPTIMIZERS.register("meanabs")(lambda params, lr: NormalizedStep(params, lr, "mean_abs"))
OPTIMIZERS.register("sign")(lambda params, lr: NormalizedStep(params, lr, "sign"))


def make_optimizer(name: str | torch.optim.Optimizer, params, lr: float) -> torch.optim.Optimizer:
    if isinstance(name, torch.optim.Optimizer):
        return name
    return OPTIMIZERS.get(name)(list(params), lr)
