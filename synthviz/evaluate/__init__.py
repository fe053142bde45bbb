"""How far an explanation can be trusted: faithfulness metrics, randomization and invariance tests,
and the fragility attack. One concept per module:

* :mod:`~synthviz.evaluate.curves` — deletion and insertion (Petsiuk 2018);
* :mod:`~synthviz.evaluate.road` — ROAD with noisy linear imputation (Rong 2022);
* :mod:`~synthviz.evaluate.localisation` — pointing game and IoU against a mask;
* :mod:`~synthviz.evaluate.randomization` — cascading and independent layer randomization (Adebayo 2018);
* :mod:`~synthviz.evaluate.invariance` — the compensated input shift (Kindermans 2017);
* :mod:`~synthviz.evaluate.robustness` — infidelity, max-sensitivity (Yeh 2019), Gini sparseness;
* :mod:`~synthviz.evaluate.smooth`, :mod:`~synthviz.evaluate.fragility` — the parts of the
  ``attack_map`` technique (Ghorbani 2019);
* :mod:`~synthviz.evaluate.synthetic` — a benchmark with known answers and a tiny CNN;
* :mod:`~synthviz.evaluate.run`, :mod:`~synthviz.evaluate.report` — the table, ``metrics.csv`` and ``index.html``.

The package itself is callable: ``synthviz.evaluate(model, images, methods=...)`` runs the registered
``evaluate`` technique and returns a :class:`~synthviz.result.Result`.
"""

from __future__ import annotations

import sys
import types

from .checks import map_problem
from .curves import auc, deletion_curve, insertion_curve, perturbation_curve
from .fragility import center_of_mass, topk_intersection
from .invariance import input_invariance, shifted_model
from .localisation import iou, pointing_game
from .randomization import cascading, independent, randomize, similarity, ssim
from .report import write_report
from .road import linear_impute, road, road_curve
from .robustness import gini, infidelity, max_sensitivity
from .run import Evaluation, evaluate_methods
from .smooth import SmoothActivations


class _CallableModule(types.ModuleType):
    """``synthviz.evaluate(...)`` calls the ``evaluate`` technique; attributes are this package's."""

    def __call__(self, *args, **kwargs):
        from ..techniques import TECHNIQUES

        return TECHNIQUES.get("evaluate")(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["Evaluation", "SmoothActivations", "auc", "cascading", "center_of_mass", "deletion_curve", "evaluate_methods",
           "gini", "independent", "infidelity", "input_invariance", "insertion_curve", "iou", "linear_impute",
           "map_problem", "max_sensitivity", "perturbation_curve", "pointing_game", "randomize", "road", "road_curve",
           "shifted_model", "similarity", "ssim", "topk_intersection", "write_report"]
