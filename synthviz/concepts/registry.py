"""Dictionary methods as a registry (the learnt result is :class:`~synthviz.concepts.dictionary.Dictionary`).

A dictionary explains a layer's activation at one position, a vector ``x`` (C,), as
``x ≈ scale · (z @ atoms + bias)``: ``atoms`` (K, C) are the concept directions, ``z`` (K,) the
non-negative coefficients of the K concepts there. Each method is one entry of :data:`METHODS`
with its facts (``kind``: ``nmf`` is fitted at once on the collected activations, ``sae`` is a
torch module trained streaming; a one-line summary) and a builder; a new method is one decorated
function::

    @register_dictionary("mine", kind="sae", summary="...")
    def mine(channels, concepts, k, points, hyper):   # hyper: a synthviz.concepts.hyper.SAEHyper
        return MySAE(channels, concepts, k)      # encode(x) -> (pre, z); decode(z); dictionary()
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..registry import Registry


@dataclass(frozen=True)
class DictionaryMethod:
    """A registered method: its ``name``, ``kind``, one-line ``summary`` and ``fn``: for ``sae``,
    ``build(channels, concepts, k, points, hyper=SAEHyper)`` -> its torch module; for ``nmf``,
    ``fit(x (S, C), concepts, seed)`` -> (atoms (K, C), facts)."""

    name: str
    kind: str
    summary: str
    fn: Callable
    needs_points: bool = False  # built from data points (archetypal: k-means centroids)


METHODS: Registry = Registry("dictionary method", "use one of nmf, sae, topk, batchtopk, jumprelu, archetypal")


def register_dictionary(name: str, *, kind: str, summary: str, needs_points: bool = False):
    """Register the decorated function as the dictionary method ``name`` (see the module's docstring)."""

    def deco(fn):
        METHODS.register(name)(DictionaryMethod(name, kind, summary, fn, needs_points))
        return fn

    return deco


