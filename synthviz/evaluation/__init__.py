"""How far an explanation can be trusted: faithfulness metrics, randomization and invariance tests,
and the fragility attack. One concept per module:

* :mod:`~synthviz.evaluation.curves` — deletion and insertion (Petsiuk 2018);
* :mod:`~synthviz.evaluation.road` — ROAD with noisy linear imputation (Rong 2022);
* :mod:`~synthviz.evaluation.localisation` — pointing game and IoU against a mask;
* :mod:`~synthviz.evaluation.randomization` — cascading and independent layer randomization (Adebayo 2018);
* :mod:`~synthviz.evaluation.invariance` — the compensated input shift (Kindermans 2017);
* :mod:`~synthviz.evaluation.robustness` — infidelity, max-sensitivity (Yeh 2019), Gini sparseness;
* :mod:`~synthviz.evaluation.smooth`, :mod:`~synthviz.evaluation.fragility` — the parts of the
  ``attack_map`` technique (Ghorbani 2019);
* :mod:`~synthviz.evaluation.metrics` — every metric of Quantus 0.6 as a registered function,
  :func:`score` (one value per image);
* :mod:`~synthviz.evaluation.synthetic` — a benchmark with known answers and a tiny CNN;
* :mod:`~synthviz.evaluation.run`, :mod:`~synthviz.evaluation.report` — the table, ``metrics.csv`` and ``index.html``.

The whole table is the registered technique ``synthviz.evaluate(model, images, methods=...)``, which
returns a :class:`~synthviz.result.Result`.
"""

from __future__ import annotations

from .checks import map_problem
from .curves import auc, deletion_curve, insertion_curve, perturbation_curve
from .fragility import center_of_mass, topk_intersection
from .invariance import input_invariance, shifted_model
from .localisation import iou, pointing_game
from .metrics import METRICS, metric_info, score
from .randomization import cascading, independent, randomize, similarity, ssim
from .report import write_report
from .road import linear_impute, road, road_curve
from .robustness import gini, infidelity, max_sensitivity
from .run import Evaluation, evaluate_methods
from .smooth import SmoothActivations

__all__ = ["METRICS", "Evaluation", "SmoothActivations", "auc", "cascading", "center_of_mass", "deletion_curve", "evaluate_methods",
           "gini", "independent", "infidelity", "input_invariance", "insertion_curve", "iou", "linear_impute",
           "map_problem", "max_sensitivity", "metric_info", "perturbation_curve", "pointing_game", "randomize", "road", "road_curve",
           "score", "shifted_model", "similarity", "ssim", "topk_intersection", "write_report"]
