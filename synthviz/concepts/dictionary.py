"""What every dictionary method learns: :class:`Dictionary`, saved as ``dictionary.pt`` (weights only)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch

from ..errors import SynthvizError
from . import nmf, sae  # noqa: F401 - each registers its methods
from .hyper import SAE_DEFAULTS
from .nmf import nnls_codes
from .registry import METHODS, DictionaryMethod

FORMAT = 1


def method_names() -> list[str]:
    """The registered dictionary methods, in registration order."""
    return METHODS.names()


def get_method(name: str) -> DictionaryMethod:
    return METHODS.get(name)


def importance_rule(method: str) -> str:
    """The concept importance the issue's rule gives a method: CRAFT's total Sobol indices
    (``sobol``) for an NMF, gradient × coefficient (``gradient``) for a sparse autoencoder."""
    return "sobol" if get_method(method).kind == "nmf" else "gradient"


@dataclass
class Dictionary:
    """A learnt dictionary of a layer: ``atoms`` (K, C), ``bias`` (C,) and ``scale`` (see the
    module's docstring), with the encoder that gives the coefficients of new activations.

    ``encoder``: the SAE's state dict (SAEs) or nothing (NMF: coefficients by non-negative least
    squares against the atoms). ``facts``: how it was made (channels, concepts, k, candidates,
    size, semi for a semi-NMF)."""

    method: str
    layer: str
    model: str
    atoms: torch.Tensor
    bias: torch.Tensor
    scale: float = 1.0
    encoder: dict = field(default_factory=dict)
    facts: dict = field(default_factory=dict)

    @property
    def concepts(self) -> int:
        return self.atoms.shape[0]

    def module(self) -> torch.nn.Module | None:
        """The SAE rebuilt from its weights (None for NMF), in eval mode."""
        method = get_method(self.method)
        if method.kind != "sae":
            return None
        f = self.facts
        points = torch.zeros(f["candidates"], f["channels"]) if method.needs_points else None
        hyper = SAE_DEFAULTS.with_values(**f.get("hyper", {}))  # (what encoding needs is in the weights)
        net = method.fn(f["channels"], f["concepts"], f.get("k"), points, hyper=hyper)
        net.load_state_dict(self.encoder)
        return net.eval()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Coefficients (n, K) ≥ 0 of activations ``x`` (n, C)."""
        x = x.float()
        net = getattr(self, "_net", None) or self.module()
        if net is None:
            return nnls_codes(x, self.atoms)
        self._net = net
        with torch.no_grad():
            return net.encode(x / self.scale)[1]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Activations (n, C) rebuilt from coefficients (n, K)."""
        return (z @ self.atoms + self.bias) * self.scale

    def to_dict(self) -> dict:
        """The weights-only form ``dictionary.pt`` holds (tensors, strings, numbers)."""
        return {"format": FORMAT, "method": self.method, "layer": self.layer, "model": self.model,
                "dictionary": self.atoms.detach().cpu().contiguous(), "bias": self.bias.detach().cpu().contiguous(),
                "scale": float(self.scale), "encoder": {k: v.detach().cpu() for k, v in self.encoder.items()},
                "facts": dict(self.facts)}

    def save(self, path: str | os.PathLike) -> None:
        """Write ``path`` atomically (``torch.load(path, weights_only=True)`` reads it)."""
        from ..io import atomic_write, state_bytes

        atomic_write(path, state_bytes(self.to_dict()))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Dictionary":
        """Read a ``dictionary.pt``; anything else is a one-line error."""
        try:
            d = torch.load(path, map_location="cpu", weights_only=True)
            return cls(d["method"], d["layer"], d["model"], d["dictionary"].float(), d["bias"].float(),
                       float(d["scale"]), dict(d["encoder"]), dict(d["facts"]))
        except FileNotFoundError:
            raise SynthvizError(f"{path} not found; learn a dictionary with `synthviz concepts DATASET --out RUN`") from None
        except Exception:  # noqa: BLE001 - a damaged or foreign file: one line, not a traceback
            raise SynthvizError(f"{path} is not a synthviz dictionary; make it with `synthviz concepts ... --overwrite`") from None
