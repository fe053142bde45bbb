"""Hugging Face transformers models (``hf:FOLDER``): a tiny random ViT saved with save_pretrained gives
pytorch-grad-cam 1.5.7's Grad-CAM (its Hugging Face recipe); class names, preprocessing, output
fields and token facts come from the model's own configs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from torch import nn

import synthviz
from synthviz.errors import SynthvizError
from synthviz.io import resize
from synthviz.layers import view_of

transformers = pytest.importorskip("transformers")
LABELS = {i: f"kind{i}" for i in range(5)}


def tiny_vit_config(**extra):
    return transformers.ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                  image_size=32, patch_size=8, num_labels=5, id2label=LABELS,
                                  label2id={v: k for k, v in LABELS.items()}, **extra)


@pytest.fixture(scope="module")
def vit_folder(tmp_path_factory):
    """A tiny random ViTForImageClassification and its image processor, saved with save_pretrained."""
    folder = tmp_path_factory.mktemp("hf") / "tiny-vit"
    torch.manual_seed(1)  # not synthviz's random-weights seed (0)
    net = transformers.ViTForImageClassification(tiny_vit_config()).eval()
    net.save_pretrained(folder)
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.5, 0.4, 0.3],
                                   image_std=[0.2, 0.25, 0.3]).save_pretrained(folder)
    return folder


def test_hf_folder_loads_with_its_own_facts(vit_folder):
    model = synthviz.load_model(f"hf:{vit_folder}")
    assert model.classes == [LABELS[i] for i in range(5)]  # from config.id2label
    assert model.class_index("kind3") == 3
    assert torch.allclose(model.mean.flatten(), torch.tensor([0.5, 0.4, 0.3]))
    assert torch.allclose(model.std.flatten(), torch.tensor([0.2, 0.25, 0.3]))
    assert model.layers["gradcam"] == "vit.layers.1.layernorm_before"
    assert model.prefix_tokens == 1
    names = dict(model.net.named_modules())
    assert "vit.layers.1.layernorm_before" in names and "classifier" in names  # the model's own names
    # the output is the logits of the saved weights, through the image processor's normalisation
    ref = transformers.ViTForImageClassification.from_pretrained(vit_folder).eval()
    x = torch.rand(2, 3, 32, 32)
    mean, std = torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1), torch.tensor([0.2, 0.25, 0.3]).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(model(x), ref(pixel_values=(x - mean) / std).logits, atol=1e-5)


def test_hf_output_option_picks_another_field(vit_folder):
    from synthviz.hf_models import hf_model

    x = torch.rand(1, 3, 32, 32)
    hidden = hf_model(str(vit_folder), output=0)(x)
    assert hidden.shape == (1, 5)  # position 0 of the tuple: the logits
    with pytest.raises(SynthvizError, match="no field 'image_embeds'"):
        hf_model(str(vit_folder), output="image_embeds")(x)


def test_hf_random_weights_build_from_config_and_state_dict_loads(vit_folder, tmp_path):
    random = synthviz.load_model(f"hf:{vit_folder}", weights="random")
    saved = synthviz.load_model(f"hf:{vit_folder}")
    assert not torch.allclose(random.net.classifier.weight, saved.net.classifier.weight)
    path = tmp_path / "state.pt"
    torch.save(saved.net.hf.state_dict(), path)
    again = synthviz.load_model(f"hf:{vit_folder}", weights=str(path))
    assert torch.equal(again.net.classifier.weight, saved.net.classifier.weight)


def test_hf_gradcam_matches_pytorch_grad_cam_recipe(vit_folder, chelsea):
    pgc = pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model = synthviz.load_model(f"hf:{vit_folder}")
    x = resize(chelsea, (32, 32))
    net = transformers.ViTForImageClassification.from_pretrained(vit_folder).eval()

    class HuggingfaceToTensorModelWrapper(nn.Module):  # pytorch-grad-cam's Hugging Face tutorial
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model(x).logits

    def reshape_transform(tensor, height=4, width=4):
        result = tensor[:, 1:, :].reshape(tensor.size(0), height, width, tensor.size(2))
        return result.transpose(2, 3).transpose(1, 2)

    with pgc.GradCAM(model=HuggingfaceToTensorModelWrapper(net), target_layers=[net.vit.layers[-1].layernorm_before],
                     reshape_transform=reshape_transform) as cam:
        ref = cam(input_tensor=model.normalize(x).requires_grad_(True), targets=[ClassifierOutputTarget(2)])
    for layer in (None, "vit.layers.1.layernorm_before"):  # the family default, and named
        ours = synthviz.saliency(model, x, method="gradcam", target=2, layer=layer)
        rho = spearmanr(np.asarray(ours, dtype=np.float64).ravel(), np.asarray(ref, dtype=np.float64).ravel())
        assert rho.statistic >= 0.99


def test_dinov2_with_registers_view_drops_class_and_register_tokens(tmp_path):
    config = transformers.Dinov2WithRegistersConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                                    intermediate_size=64, image_size=32, patch_size=8,
                                                    num_register_tokens=4)
    transformers.Dinov2WithRegistersModel(config).save_pretrained(tmp_path / "dino")
    model = synthviz.load_model(f"hf:{tmp_path / 'dino'}", weights="random")
    assert model.prefix_tokens == 5 and model.classes is None
    layer = model.layers["gradcam"]
    x = torch.rand(1, 3, 48, 32)  # non-square: the grid follows the size (position embeddings interpolate)
    raw = _raw(model, x, layer)
    assert raw.shape == (1, 5 + 6 * 4, 32)
    view = view_of(model, layer, raw, (48, 32))
    assert view.shape == (1, 32, 6, 4)
    assert torch.equal(view, raw[:, 5:].transpose(1, 2).reshape(1, 32, 6, 4))


def _raw(model, x, layer):
    """The raw (B, N, C) output of ``layer`` through a forward hook."""
    out = {}
    handle = model.net.get_submodule(layer).register_forward_hook(lambda m, a, o: out.setdefault("t", o))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return out["t"]


def test_missing_transformers_names_the_extra(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_transformers(name, *args, **kwargs):
        if name == "transformers":
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_transformers)
    with pytest.raises(SynthvizError, match=r"synthviz\[hf\]"):
        synthviz.load_model("hf:some/model", weights="random")
