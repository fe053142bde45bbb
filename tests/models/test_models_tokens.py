"""Any model: torchvision/timm transformers by name, fixed input sizes, custom preprocessing, and
the spatial view of token layers (issue 12)."""

from __future__ import annotations

import pytest
import torch
from clihelp import run
from tiny import TinyRegressor, tiny_vit

from synthviz import objectives as obj
from synthviz.layers import Tap, layer_shape, layer_shapes
from synthviz.models import IMAGENET_MEAN, IMAGENET_STD, Model, load_model
from synthviz.tokens import spatial_view, token_grid


def test_token_grid_inference():
    assert token_grid(197, (224, 224)).__dict__ == {"prefix": 1, "h": 14, "w": 14}
    assert token_grid(196 + 5, (224, 224)).prefix == 5  # class + 4 registers
    assert token_grid(198, (224, 224), prefix=2).h == 14  # DeiT: class + distillation
    assert (token_grid(1 + 6 * 8, (96, 128)).h, token_grid(1 + 6 * 8, (96, 128)).w) == (6, 8)
    assert token_grid(7, (224, 224), prefix=1) is None


def test_spatial_view_equals_manual_reshape():
    tokens = torch.randn(2, 1 + 4 * 4, 16)
    view = spatial_view(tokens, (32, 32))
    # manual: (B, C, 4, 4) built token by token, row-major
    manual = torch.stack([torch.stack([torch.stack([tokens[b, 1 + r * 4 + c] for c in range(4)], -1)
                                       for r in range(4)], -2) for b in range(2)])
    assert torch.equal(view, manual)
    nhwc = torch.randn(2, 5, 6, 7)
    assert torch.equal(spatial_view(nhwc, (20, 24), channels_last=True), nhwc.permute(0, 3, 1, 2))


def test_tap_hands_objectives_the_spatial_view():
    m = load_model(tiny_vit())
    assert m.input_size == (32, 32) and m.prefix_tokens == 1
    x = torch.rand(1, 3, 32, 32)
    layer = "encoder.layers.encoder_layer_1"
    with Tap(m, [layer], spatial=False) as tap:
        raw = tap(x)[layer]
    with Tap(m, [layer]) as tap:
        view = tap(x)[layer]
    assert raw.shape == (1, 17, 16) and view.shape == (1, 16, 4, 4)
    assert torch.equal(view, raw[:, 1:].transpose(1, 2).reshape(1, 16, 4, 4))
    # a neuron at (x=2, y=1) is patch token 1 + 1*4 + 2
    from synthviz.objectives import Context

    ctx = Context(x, {layer: view})
    assert torch.equal(obj.neuron(layer, 5, x=2, y=1)(ctx), raw[:, 1 + 4 + 2, 5])
    assert torch.allclose(obj.channel(layer, 5)(ctx), raw[:, 1:, 5].mean(1))
    assert layer_shape(m, layer, 32) == (16, 4, 4)


def test_fixed_input_size_is_honoured_and_exact_size_untouched():
    m = load_model(tiny_vit())
    x = torch.rand(2, 3, 32, 32)
    assert m.fit(x) is x  # neither resized nor cropped
    odd = torch.rand(1, 3, 20, 45)
    assert m(odd).shape == (1, 10)  # resized inside the call; torchvision's ViT asserts 32x32
    expected = torch.nn.functional.interpolate(odd, size=(32, 32), mode="bilinear", antialias=True)
    assert torch.allclose(m(odd), m.net(m.normalize(expected)))


def test_vit_b_16_random_and_checkpoint(tmp_path):
    m = load_model("vit_b_16", weights="random")
    assert m.input_size == (224, 224) and m.layers["gradcam"] == "encoder.layers.encoder_layer_11.ln_1"
    ckpt = tmp_path / "vit.pt"
    torch.save(tiny_vit().state_dict(), ckpt)
    with pytest.raises(Exception, match="does not fit"):
        load_model("vit_b_16", weights=ckpt)
    torch.save(m.net.state_dict(), ckpt)
    again = load_model("vit_b_16", weights=ckpt)
    assert torch.allclose(again.mean.flatten(), torch.tensor(IMAGENET_MEAN))
    assert torch.equal(again.net.heads.head.bias, m.net.heads.head.bias)


def test_layers_cli_lists_tokens_with_grid():
    result = run("layers", "vit_b_32")
    assert result.exit_code == 0, result.output
    line = [ln for ln in result.output.splitlines() if ln.startswith("encoder.layers.encoder_layer_6 ")][0]
    assert "(50, 768)" in line and "7×7 + 1 class token" in line


def test_timm_model_by_name():
    pytest.importorskip("timm")
    m = load_model("timm:vit_tiny_patch16_224", weights="random")
    assert m.input_size == (224, 224) and m.prefix_tokens == 1
    assert m.layers["gradcam"] == "blocks.11.norm1"
    with Tap(m, ["blocks.2"]) as tap:
        assert tap(torch.rand(1, 3, 64, 96))["blocks.2"].shape == (1, 192, 14, 14)
    s = load_model("timm:swin_tiny_patch4_window7_224", weights="random")
    with Tap(s, ["layers.1"]) as tap:  # (B, H, W, C) -> (B, C, H, W)
        assert tap(torch.rand(1, 3, 224, 224))["layers.1"].shape == (1, 192, 28, 28)


def test_plain_module_with_its_own_preprocessing_and_output():
    net = TinyRegressor()
    calls = []

    def prep(x):
        calls.append(x.shape)
        return x * 2 - 1

    m = Model(net, preprocess=prep, name="regressor")
    x = torch.rand(2, 3, 24, 24)
    assert torch.allclose(m(x), net(x * 2 - 1)) and calls
    assert m.num_classes == 0 and load_model(net).classes is None  # one output: no ImageNet names
    assert dict(layer_shapes(m, 24))["logits"] == (1,)
    plain = Model(net, mean=None, std=None)
    assert torch.allclose(plain(x), net(x))


def test_timm_local_checkpoint_uses_the_architectures_preprocessing(tmp_path):
    timm = pytest.importorskip("timm")
    net = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=1000)
    torch.save(net.state_dict(), tmp_path / "deit.pt")
    m = load_model("timm:vit_tiny_patch16_224", weights=tmp_path / "deit.pt")
    assert torch.allclose(m.mean.flatten(), torch.tensor(net.pretrained_cfg["mean"]).float())
    x = torch.rand(1, 3, 224, 224)
    assert torch.allclose(m(x), net.eval()((x - m.mean) / m.std), atol=1e-5)


def test_embedded_model_normalises_inputs_as_its_weights_were_trained(embedded, skimage_image):
    """The BN after the stem convolution keeps the running statistics of its training inputs: with the
    right preprocessing the stem's variance on real photos is near the running variance. TensorFlow's
    Lite preprocessing gives 0.73x on these photos; ImageNet's mean/std (twice the contrast) 3.58x."""
    from synthviz.io import resize

    names = ("chelsea", "coffee", "astronaut", "rocket", "camera", "coins", "brick", "grass", "gravel")
    photos = torch.cat([resize(skimage_image(n), (224, 224)) for n in names])

    def variance_ratio(mean, std) -> float:
        x = (photos - torch.as_tensor(mean).view(1, 3, 1, 1)) / torch.as_tensor(std).view(1, 3, 1, 1)
        with torch.no_grad():
            stem = embedded.net._conv_stem(x)
        return float((stem.var(dim=(0, 2, 3)) / embedded.net._bn0.running_var).median())

    assert 0.5 < variance_ratio(embedded.mean.flatten(), embedded.std.flatten()) < 1.5
    assert variance_ratio(IMAGENET_MEAN, IMAGENET_STD) > 2.5  # the check tells the two apart
