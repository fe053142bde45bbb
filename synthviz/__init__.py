"""synthviz: pictures of what vision networks have learned, and painting with them.

One optimization engine (:func:`render`) with pluggable objectives, parameterizations,
regularizers and transforms drives every technique::

    import synthviz
    result = synthviz.classviz(target="Egyptian cat", size=128)   # embedded EfficientNet-Lite0
    result.save("cat.png")                                        # the image + cat.json

    from synthviz import objectives as obj
    model = synthviz.load_model("efficientnet_lite0")
    result = synthviz.render(model, obj.channel("_blocks.8", 3) - 0.5 * obj.channel("_blocks.8", 7),
                             synthviz.FourierImage(1, 128), transforms=synthviz.transforms.standard_transforms())
"""

from . import maco, model_zoo, objectives, params, presets, regularizers, transforms  # noqa: F401 - model_zoo registers models
from .attribution import attribute, saliency
from .engine import RenderInterrupted, render
from .errors import BadImage, BadModel, BadValue, SynthvizError, TooLarge, WriteError
from .io import load_image, make_grid, save_image, save_video
from .layers import Tap, capture, layer_shapes
from .models import Model, list_models, load_model, register_model
from .objectives import Objective, register_objective
from .params import FourierImage, PixelImage, make_param
from .result import Result
from .techniques import TECHNIQUES, load_all, register_technique
from .version import __version__

load_all()


def __getattr__(name: str):
    """Every registered technique is ``synthviz.<name>``: classviz, probe, fool, dream, style..."""
    if name in TECHNIQUES:
        return TECHNIQUES.get(name)
    raise AttributeError(f"module 'synthviz' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(TECHNIQUES.names()))

__all__ = [
    "FourierImage", "Model", "attribute", "saliency", "Objective", "PixelImage", "RenderInterrupted", "Result", "SynthvizError", "BadImage", "BadModel", "BadValue", "TooLarge", "WriteError",
    "TECHNIQUES", "Tap", "capture", "layer_shapes", "list_models", "load_model", "load_image",
    "make_grid", "make_param", "objectives", "params", "presets", "register_model", "register_objective",
    "register_technique", "regularizers", "render", "save_image", "save_video", "transforms", "__version__",
]
