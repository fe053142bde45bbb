"""Token grids of Hugging Face models at sizes other than the trained one (issue 27): DINOv2 with
registers drops 1 + the config's register tokens, and DINOv2 and HF ViT (with
``interpolate_pos_encoding``) take a non-square photo at any size, even when their folder's image
processor names the trained size: the spatial view has the photo's patch grid and Grad-CAM a map
of the photo's shape, equal to pytorch-grad-cam's recipe on the same grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from torch import nn

import synthviz
from tiny import raw_output
from synthviz.layers import view_of

transformers = pytest.importorskip("transformers")
SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, image_size=32,
             patch_size=8)
PHOTO = (48, 32)  # 6 x 4 patches of 8 px; trained at 32 x 32 (4 x 4)


def _processor(folder):
    """The image processor the hub's DINOv2 folders carry: a 32 px centre crop (the trained size)."""
    transformers.BitImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32},
                                   do_center_crop=True).save_pretrained(folder)


@pytest.mark.parametrize("registers", [4, 2])
def test_dinov2_with_registers_grid_follows_a_non_square_size(tmp_path, registers):
    config = transformers.Dinov2WithRegistersConfig(**SMALL, num_register_tokens=registers)
    transformers.Dinov2WithRegistersModel(config).save_pretrained(tmp_path / "dino")
    _processor(tmp_path / "dino")
    model = synthviz.load_model(f"hf:{tmp_path / 'dino'}")
    assert model.prefix_tokens == 1 + registers and model.input_size is None  # read from the config
    layer = model.layers["gradcam"]
    x = torch.rand(1, 3, *PHOTO)
    raw = raw_output(model, x, layer)
    assert raw.shape == (1, 1 + registers + 6 * 4, 32)  # not resized to the processor's 32 x 32
    view = view_of(model, layer, raw, PHOTO)
    assert torch.equal(view, raw[:, 1 + registers:].transpose(1, 2).reshape(1, 32, 6, 4))
    att = synthviz.attribute(model, x, "gradcam", target=0)
    assert att.raw.shape == (1, 1, 6, 4) and att.maps.shape == (1, 1, *PHOTO) and float(att.maps.max()) > 0


def test_hf_vit_interpolates_and_gradcam_matches_pytorch_grad_cam_on_the_grid(tmp_path):
    pgc = pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    torch.manual_seed(4)
    transformers.ViTForImageClassification(transformers.ViTConfig(**SMALL, num_labels=3)).save_pretrained(tmp_path)
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    model = synthviz.load_model(f"hf:{tmp_path}")
    assert model.input_size is None
    x = torch.rand(1, 3, *PHOTO)
    layer = model.layers["gradcam"]
    assert view_of(model, layer, raw_output(model, x, layer), PHOTO).shape == (1, 32, 6, 4)
    net = transformers.ViTForImageClassification.from_pretrained(tmp_path).eval()

    class Wrapper(nn.Module):  # pytorch-grad-cam's Hugging Face recipe, at the photo's size
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, z):
            return self.inner(pixel_values=z, interpolate_pos_encoding=True).logits

    def reshape(t):
        return t[:, 1:].reshape(t.shape[0], 6, 4, t.shape[2]).permute(0, 3, 1, 2)

    with pgc.GradCAM(model=Wrapper(net), target_layers=[net.vit.layers[-1].layernorm_before],
                     reshape_transform=reshape) as cam:
        ref = cam(input_tensor=model.normalize(x).requires_grad_(True), targets=[ClassifierOutputTarget(1)])
    att = synthviz.attribute(model, x, "gradcam", target=1)
    assert att.raw.shape == (1, 1, 6, 4) and att.maps.shape == (1, 1, *PHOTO)
    ours = synthviz.saliency(model, x, method="gradcam", target=1)
    rho = spearmanr(np.asarray(ours, dtype=np.float64).ravel(), np.asarray(ref, dtype=np.float64).ravel())
    assert rho.statistic >= 0.99


def test_an_older_transformers_is_one_line(tmp_path, monkeypatch):
    """The ``hf`` extra's floor (transformers>=5) and the eager-attention switch it needs."""
    from synthviz.errors import SynthvizError

    net = transformers.ViTForImageClassification(transformers.ViTConfig(**SMALL, num_labels=3))
    net.save_pretrained(tmp_path)
    model = synthviz.load_model(net)
    x = torch.rand(1, 3, 32, 32)
    monkeypatch.delattr(transformers.PreTrainedModel, "set_attn_implementation")
    with pytest.raises(SynthvizError, match=r"set_attn_implementation.*transformers>=5"):
        synthviz.attribute(model, x, "rollout")
    import sys

    monkeypatch.setattr(sys.modules["transformers"], "__version__", "4.46.3")  # (transformers swaps its module)
    with pytest.raises(SynthvizError, match=r"need transformers>=5, not 4\.46\.3"):
        synthviz.load_model(f"hf:{tmp_path}")


def test_a_family_that_cannot_interpolate_is_resized_to_its_trained_size():
    """LeViT's attention biases are fixed to its trained grid: another size is resized to it inside
    the call (no error, no traceback) and the maps keep the photo's shape."""
    from synthviz.hf_models import model_of_hf

    torch.manual_seed(6)
    net = transformers.LevitForImageClassification(transformers.LevitConfig(
        image_size=64, hidden_sizes=[16, 32, 48], num_attention_heads=[1, 2, 3], depths=[1, 1, 1], key_dim=[8, 8, 8],
        num_labels=3)).eval()
    model = model_of_hf(net)
    assert model.input_size == (64, 64) and model.prefix_tokens == 0
    x = torch.rand(1, 3, 96, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), net(pixel_values=model.normalize(model.fit(x))).logits, atol=1e-5)
    assert synthviz.attribute(model, x, "gradcam", target=0).maps.shape == (1, 1, 96, 64)
