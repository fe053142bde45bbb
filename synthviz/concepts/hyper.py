"""The hyper-parameters of the sparse autoencoders, in one place: :class:`SAEHyper`.

Every number that shapes an SAE's training lives here under a name that says what it does; the
modules (:mod:`.sae`) and the training loop (:mod:`.train`) read them from the instance they are
given, :data:`SAE_DEFAULTS` unless the user sets some. The ones users tune are options of
``synthviz concepts`` and of :func:`synthviz.concepts.learn` (see :data:`TUNED`); the others are
here to be read (and set in Python, ``learn(..., sae=SAEHyper(...))``).

Inputs are divided by one scale (their RMS) before training, so the penalties and the learning
rate mean the same on every layer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from ..checks import non_negative, positive
from ..errors import BadValue


@dataclass(frozen=True)
class SAEHyper:
    """The SAE hyper-parameters (defaults: :data:`SAE_DEFAULTS`)."""

    learning_rate: float = 3e-3  # Adam's step size (``--lr``)
    epochs: int = 20  # passes over the collected activations (``--epochs``)
    positions_per_image_batch: int = 8  # a training step sees this many × ``batch_size`` positions
    l1_weight: float = 0.3  # ``sae``: weight of the L1 penalty on the codes (``--l1``)
    l0_weight: float = 1.0  # ``jumprelu``: weight of the L0 penalty, the count of active codes (``--l0``)
    jump_bandwidth: float = 0.5  # ``jumprelu``: width of the straight-through rectangle kernel
    jump_threshold_start: float = 0.5  # ``jumprelu``: every code's threshold before training
    threshold_momentum: float = 0.9  # ``batchtopk``: momentum of the running threshold used after training
    archetypal_delta: float = 1.0  # ``archetypal``: the bound δ on the norm of an atom's relaxation (``--delta``)
    archetypes_per_concept: int = 4  # ``archetypal``: k-means centroids (candidate archetypes) per concept
    scale_sample: int = 20_000  # positions read to set the input scale, the start and the archetypes

    def check(self) -> "SAEHyper":
        """Itself, every value checked (one-line :class:`~synthviz.errors.BadValue` naming the option)."""
        option = {field: name for name, field in TUNED.items()}
        for f in fields(self):
            check = non_negative if f.name in ("l1_weight", "l0_weight") else positive
            check(option.get(f.name, f.name), getattr(self, f.name), integer=isinstance(f.default, int))
        if not self.threshold_momentum < 1:
            raise BadValue(f"threshold_momentum must be below 1, not {self.threshold_momentum}")
        return self

    def changed(self) -> dict:
        """The values that differ from :data:`SAE_DEFAULTS` (what a run's settings record)."""
        return {k: v for k, v in asdict(self).items() if v != getattr(SAE_DEFAULTS, k)}

    def with_values(self, **values) -> "SAEHyper":
        """A copy with ``values`` (None: unchanged) set, checked."""
        return replace(self, **{k: v for k, v in values.items() if v is not None}).check()


SAE_DEFAULTS = SAEHyper()

# the options users tune: option name of ``learn`` / ``synthviz concepts`` -> field of SAEHyper
TUNED = {"lr": "learning_rate", "epochs": "epochs", "l1": "l1_weight", "l0": "l0_weight",
         "delta": "archetypal_delta"}
