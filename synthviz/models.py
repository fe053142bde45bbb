"""Models: a frozen classifier together with what it needs to read an image.

Every technique feeds RGB images in [0, 1]; the :class:`Model` applies the network's own
normalisation and knows its class names, so users never normalise by hand.
Models are found by name in a registry (``@register_model``); any torchvision
classification model works too.
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Union

import torch
from torch import nn

from .device import resolve_device  # noqa: F401 - part of this module's API
from .fusion import Twin, build_twin, fingerprint
from .errors import BadModel, BadValue, SynthvizError, did_you_mean
from .env import env_flag
from .model_facts import module_facts
from .registry import Registry

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# TensorFlow's EfficientNet-Lite preprocessing, (x·255 − 127) / 128, which its weights were trained
# with: on real photos the stem's pre-BN variance then matches the BN running variance (0.73×);
# under IMAGENET_STD the network sees twice the contrast (3.58×; benchmarks/embedded_facts.py).
LITE_MEAN = (127 / 255,) * 3
LITE_STD = (128 / 255,) * 3
DEFAULT_MODEL = "efficientnet_lite0"


def imagenet_classes() -> list[str]:
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    return list(_IMAGENET_CATEGORIES)


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
        input_size: the fixed input side (or (H, W)) the network needs (ViT: 224), or None. Images of
            another size are resized to it (bilinear, antialiased, differentiable) inside the call, so
            maps and renders stay at the caller's resolution; an image of that size is not touched.
        preprocess: a callable (B, 3, H, W) in [0, 1] -> network input, used instead of mean/std
            (``mean``/``std`` ``None``: no normalisation at all).
        prefix_tokens: class/distillation/register tokens before the patch tokens of a token layer
            (None: inferred from the token count and the input grid).
        channels_last: ``name -> bool``, the layers whose 4-D output is (B, H, W, C) (Swin).
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
        input_size: int | tuple[int, int] | None = None,
        preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
        prefix_tokens: int | None = None,
        channels_last: Callable[[str], bool] | None = None,
    ):
        # a network synthviz built itself is kept in eval mode with frozen parameters; a user's
        # module is never changed (every forward runs inside evaluating(), which restores it)
        self.net = net.eval().requires_grad_(False) if owned else net
        self._evaluating = 0  # nesting depth of evaluating(): forwards inside skip re-freezing
        self.fuse = env_flag("SYNTHVIZ_FUSE", True)  # run forwards on the fused twin
        self._twin: tuple = (None, Twin(None))  # (the net's fingerprint, its twin)
        self.mean = torch.tensor(mean if mean is not None else (0.0,), dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std if std is not None else (1.0,), dtype=torch.float32).view(1, -1, 1, 1)
        self.preprocess = preprocess
        self.input_size = (input_size, input_size) if isinstance(input_size, int) else (
            tuple(input_size) if input_size is not None else None)
        self.prefix_tokens = prefix_tokens
        self.channels_last = channels_last
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
        """(B, 3, H, W) in [0, 1] -> the network's input space (the preprocess callable, or mean/std)."""
        if self.preprocess is not None:
            return self.preprocess(x)
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

    def fit(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, 3, *input_size): resized when the network needs a fixed size, else as is."""
        if self.input_size is None or tuple(x.shape[-2:]) == self.input_size:
            return x
        import torch.nn.functional as F

        return F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=False, antialias=True)

    def input_hw(self, x: torch.Tensor) -> tuple[int, int]:
        """The (H, W) the network itself sees for the batch ``x``."""
        return self.input_size or tuple(x.shape[-2:])

    def runner(self, x: torch.Tensor, layers: Sequence[str] = (), unfold: bool = False) -> nn.Module:
        """The network a forward of ``x`` (B, 3, H, W) in [0, 1] runs on: the fused twin
        (:mod:`synthviz.fusion`) when there is one and none of ``layers`` (names to hook) is a
        convolution it folded, else ``self.net``. A twin is built (and checked) on ``x[:1]``.
        ``unfold``: the caller reads folded convolutions through :meth:`unfolds` (the twin then
        serves every folded convolution whose batch norm can be undone)."""
        if not self.fuse or x.dtype != torch.float32:
            return self.net
        key = fingerprint(self.net)
        if key is None:  # the caller's own hooks must see the forward
            return self.net
        if key != self._twin[0]:
            # outside the caller's torch-function modes (DeepLIFT and LRP record or change calls)
            # and inference mode (the check reads the autograd graph)
            with self.evaluating(), torch._C.DisableTorchFunction(), torch.inference_mode(False):
                probe = self.normalize(self.fit(x[:1].detach().clone()))
                self._twin = (key, build_twin(self.net, probe))
        twin = self._twin[1]
        hidden = twin.folded.difference(twin.unfolds) if unfold else twin.folded
        if twin.net is None or hidden.intersection(layers):
            return self.net
        return twin.net

    def unfolds(self, net: nn.Module) -> dict:
        """{folded convolution name: :class:`~synthviz.fusion.Unfold`} when ``net`` is the fused twin
        (its output there is the batch norm's), else {}."""
        twin = self._twin[1]
        return twin.unfolds if net is twin.net and net is not None else {}

    def __call__(self, x: torch.Tensor, net: nn.Module | None = None):
        """(B, 3, H, W) RGB in [0, 1] -> the network's output (logits (B, K) for a classifier), in
        eval mode with frozen parameters; resized to ``input_size`` first when there is one.
        ``net``: the network to run (``self.net`` or :meth:`runner`'s; default: :meth:`runner`)."""
        with self.evaluating():
            net = self.runner(x) if net is None else net
            z = self.normalize(self.fit(x))
            if net is not self.net and self._twin[1].channels_last:
                z = z.contiguous(memory_format=torch.channels_last)
            return net(z)

    @property
    def num_classes(self) -> int:
        return len(self.classes) if self.classes else 0

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

    def with_net(self, net: nn.Module) -> "Model":
        """The same model facts (preprocessing, size, classes, layers) around another network."""
        twin = copy.copy(self)
        twin.net, twin._evaluating, twin._twin = net, 0, (None, Twin(None))
        twin.__dict__.pop("_randomised", None)  # randomised copies of the other network (metrics' MPRT)
        return twin

    def copy(self) -> "Model":
        """A private deep copy: the network's weights and every setting (preprocessing, fixed input
        size, classes, layers, token facts); changing the copy's weights never touches this model."""
        twin = self.with_net(copy.deepcopy(self.net))
        twin.layers = dict(self.layers)
        twin.classes = list(self.classes) if self.classes is not None else None
        return twin

    def __repr__(self) -> str:
        return f"Model({self.name}, {self.num_classes} classes, device={self.device})"


ModelLike = Union[str, Model, nn.Module]  # what every technique takes as its model


# --------------------------------------------------------------------------- registry

MODELS: Registry[Callable[..., Model]] = Registry("model", "run `synthviz models` for the list")
register_model = MODELS.register

# Name prefixes served by another library ("timm:vit_small_patch16_224"): prefix -> loader(name, weights).
SOURCES: Registry[Callable[..., Model]] = Registry("model source", "use timm:NAME")
register_source = SOURCES.register
# Recognisers of another library's networks passed as plain modules: fn(net) -> Model | None.
WRAPPERS: Registry[Callable[[nn.Module], "Model | None"]] = Registry("module wrapper")
register_wrapper = WRAPPERS.register



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
        model = _module_model(name)
        return check_finite_model(model.to(device) if device is not None else model)
    if not isinstance(name, str):
        raise BadModel(f"a model is a name (see `synthviz models`), a synthviz Model or an nn.Module, "
                       f"not {type(name).__name__}")
    weights = "default" if weights is None else weights
    if name in MODELS:
        model = MODELS.get(name)(weights=weights)
    elif ":" in name:
        prefix, _, rest = name.partition(":")
        model = SOURCES.get(prefix)(rest, weights)
    elif name in _torchvision_names():  # a bare torchvision name (synthviz.model_zoo serves them)
        model = SOURCES.get("torchvision")(name, weights)
    else:
        raise BadModel(
            f"unknown model '{name}'{did_you_mean(name, list_models())}; run `synthviz models` for the list"
        )
    return check_finite_model(model.to(device))


def check_finite_model(model: Model) -> Model:
    """``model`` unless a weight or buffer is NaN/inf (a broken checkpoint): then one-line
    :class:`~synthviz.errors.BadModel`. Checked once per model (weights never change here)."""
    if getattr(model, "_finite_checked", False):
        return model
    bad = next((n for n, t in [*model.net.named_parameters(), *model.net.named_buffers()]
                if t.is_floating_point() and not torch.isfinite(t).all()), None)
    if bad is not None:
        raise BadModel(f"{model.name} has NaN/inf values in {bad}; check --weights (the checkpoint is broken)")
    model._finite_checked = True
    return model


def _module_model(net: nn.Module) -> Model:
    """A plain network: ImageNet preprocessing; ImageNet class names only if its last linear layer
    has 1000 outputs; torchvision ViTs, Swins, MaxViTs and timm models bring their own facts."""
    for wrap in WRAPPERS:
        model = WRAPPERS.get(wrap)(net)
        if model is not None:
            return model
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    classes = imagenet_classes() if linears and linears[-1].out_features == 1000 else None
    facts = module_facts(net)  # torchvision's ViT, Swin and MaxViT
    return Model(net, classes=classes, name=type(net).__name__, owned=False, **facts)


@contextlib.contextmanager
def frozen(net: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and no parameter gradients for the duration, then the module exactly as it was."""
    flags = [p for p in net.parameters() if p.requires_grad]
    modes = [m for m in net.modules() if m.training]
    if modes:  # (a network already in eval mode with frozen parameters costs only the two scans)
        net.eval()
    for p in flags:
        p.requires_grad_(False)
    try:
        yield net
    finally:
        for p in flags:
            p.requires_grad_(True)
        for m in modes:
            m.training = True
