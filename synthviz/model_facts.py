"""What synthviz needs to know about torchvision architectures: per-model layer choices, and for the
transformers their fixed input sizes, class tokens, the layers whose output is (B, H, W, C) and
their default layers (CAM at the last block's first LayerNorm, whose patch tokens all reach the
class token)."""

from __future__ import annotations

from torch import nn


def transformer_facts(name: str, net: nn.Module) -> dict:
    """Fixed input size, token prefix, (B, H, W, C) layers and default layers of torchvision's
    transformers (ViT, Swin, MaxViT), from the model's name."""
    if name.startswith("vit_"):  # asserts its image_size; one class token; CAM at the last block's ln_1
        last = len(net.encoder.layers) - 1
        return dict(input_size=net.image_size, prefix_tokens=1,
                    layers={"gradcam": f"encoder.layers.encoder_layer_{last}.ln_1",
                            "mid": f"encoder.layers.encoder_layer_{last // 2}"})
    if name.startswith("maxvit"):
        return maxvit_facts(net)
    if name.startswith("swin"):
        return swin_facts(net)
    return {}


def module_facts(net: nn.Module) -> dict:
    """The same facts for a torchvision ViT, Swin or MaxViT built by the user (a plain module)."""
    from torchvision.models import MaxVit, SwinTransformer, VisionTransformer

    for cls, key in ((VisionTransformer, "vit_"), (SwinTransformer, "swin"), (MaxVit, "maxvit")):
        if isinstance(net, cls):
            return transformer_facts(key, net)
    return {}


def swin_facts(net: nn.Module) -> dict:
    """Swin: every layer after the stem's convolution is (B, H, W, C). The stages are the odd
    ``features.i`` (the even ones merge patches); CAM at the last stage, whose positions all reach
    the head through the final LayerNorm and the average pool."""
    stages = [f"features.{i}" for i in range(1, len(net.features), 2)]
    return dict(channels_last=swin_channels_last,
                layers={"gradcam": stages[-1], "mid": stages[len(stages) // 2], "early": stages[0],
                        "content": stages[max(0, len(stages) - 2)]})


def maxvit_facts(net: nn.Module) -> dict:
    """MaxViT: its window/grid partitions are fixed at construction, so the input size is too (the last
    block's grid times 2 per block and 2 for the stem: 224 for maxvit_t). Its blocks output (B, C, H, W);
    the (B, windows, positions, C) partitions inside them are not maps, so the stages are named here
    (the generic stage search would pick a partition). CAM at the last block (average-pooled by the head)."""
    blocks = [f"blocks.{i}" for i in range(len(net.blocks))]
    gh, gw = net.blocks[-1].grid_size
    factor = 2 ** (len(net.blocks) + 1)
    return dict(input_size=(gh * factor, gw * factor),
                layers={"gradcam": blocks[-1], "mid": blocks[len(blocks) // 2], "early": blocks[0],
                        "content": blocks[max(0, len(blocks) - 2)], "style": ["stem"] + blocks})


def swin_channels_last(layer: str) -> bool:
    """Swin's (B, H, W, C) layers: all of ``features`` but the stem's convolution, and ``norm``."""
    return (layer.startswith("features.") and not layer.startswith("features.0.0")) or layer in ("features", "norm")


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
