"""Every evaluation metric of the field as a registered function, equal to Quantus 0.6's.

One module per family (:mod:`.faithfulness`, :mod:`.robustness`, :mod:`.localisation`,
:mod:`.complexity`, :mod:`.randomisation`, :mod:`.axiomatic`); :mod:`.registry` holds the
registry and :func:`score`, the one entry::

    from synthviz.evaluation import score
    score(model, images, maps, targets, metric="pixel_flipping", features_in_step=64)   # (B,)
    metric_info("pixel_flipping").higher_is_better                                     # False

Names and option defaults are Quantus's; where Quantus 0.6 has a bug the documented behaviour is
implemented and the metric's docstring says so.
"""

from __future__ import annotations

from . import complexity, localisation, faithfulness, regions, robustness, randomisation, axiomatic  # noqa: F401, I001
from .registry import FAMILIES, METRICS, MetricData, MetricInfo, metric_info, names, register_metric, score

__all__ = ["FAMILIES", "METRICS", "MetricData", "MetricInfo", "metric_info", "names", "register_metric", "score"]
