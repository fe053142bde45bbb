"""What synthviz needs to know about torchvision architectures: per-model layer choices, and for the
transformers their fixed input sizes, class tokens, the layers whose output is (B, H, W, C) and
their default layers (CAM at the last block's first LayerNorm, whose patch tokens all reach the
class token)."""

from __future__ import annotations

from torch import nn


def transformer_facts(name: str, net: nn.Module) -> dict:
    """Fixed input size, token prefix and (B, H, W, C) layers of torchvision's transformers."""
    if name.startswith("vit_"):  # asserts its image_size; one class token; CAM at the last block's ln_1
        last = len(net.encoder.layers) - 1
        return dict(input_size=net.image_size, prefix_tokens=1,
                    layers={"gradcam": f"encoder.layers.encoder_layer_{last}.ln_1",
                            "mid": f"encoder.layers.encoder_layer_{last // 2}"})
    if name.startswith("maxvit"):  # window partitions fixed at construction
        return dict(input_size=224)
    if name.startswith("swin"):  # features after the stem's Permute and the final norm are (B, H, W, C)
        return dict(channels_last=swin_channels_last,
                    layers={"gradcam": f"features.{len(net.features) - 1}", "mid": "features.5"})
    return {}


def swin_channels_last(layer: str) -> bool:
    return (layer.startswith("features.") and not layer.startswith("features.0.0")) or layer == "norm"


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
