"""What texture synthesis and style transfer share, one concept per module:

* :mod:`.options` — reading the shared options (blend and layer weights, choices, minimum sizes);
* :mod:`.stats` — style statistics (Gram, moments) and the layers they are read at;
* :mod:`.smoothing` — SWAG's softmax feature smoothing (statistics on any network);
* :mod:`.patches` — temporary model patches (average pooling, circular padding), always restored;
* :mod:`.color` — histogram and colour matching, luminance and chroma;
* :mod:`.ladder` — the coarse-to-fine ladder of renders.
"""

from .color import chroma, luminance, match_color, match_histogram, with_chroma
from .ladder import ladder_sizes, periodic_resize, run_ladder, scale_steps
from .options import (
                      MIN_SIDE,
                      MIN_STYLE_SIDE,
                      STATS,
                      as_list,
                      blend_weights,
                      check_choice,
                      check_min_side,
                      check_stat,
                      default_lr,
                      is_grey,
                      warn_grey_style,
)
from .patches import circular_padding, pooling
from .smoothing import SMOOTHINGS, SoftmaxFeatures, feature_transform, smooth_acts, smoothed, softmax_features
from .stats import (
                      StyleTargets,
                      check_layer,
                      content_layer,
                      layer_weights,
                      score,
                      stats_of,
                      style_layers,
                      style_objective,
                      style_targets,
)

__all__ = ["MIN_SIDE", "MIN_STYLE_SIDE", "SMOOTHINGS", "STATS", "SoftmaxFeatures", "feature_transform", "smooth_acts",
           "smoothed", "softmax_features", "StyleTargets", "as_list", "blend_weights", "check_choice",
           "check_layer", "check_min_side", "check_stat", "chroma", "circular_padding", "content_layer",
           "default_lr", "is_grey", "ladder_sizes", "layer_weights", "luminance", "match_color", "match_histogram",
           "periodic_resize", "pooling", "run_ladder", "scale_steps", "score", "stats_of", "style_layers",
           "style_objective", "style_targets", "warn_grey_style", "with_chroma"]
