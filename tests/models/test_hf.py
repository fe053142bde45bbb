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
from tiny import raw_output
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
    raw = raw_output(model, x, layer)
    assert raw.shape == (1, 5 + 6 * 4, 32)
    view = view_of(model, layer, raw, (48, 32))
    assert view.shape == (1, 32, 6, 4)
    assert torch.equal(view, raw[:, 5:].transpose(1, 2).reshape(1, 32, 6, 4))


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


def test_a_users_transformers_module_keeps_its_facts_and_is_left_as_it_was(vit_folder):
    net = transformers.ViTForImageClassification.from_pretrained(vit_folder).train()
    model = synthviz.load_model(net)
    assert model.classes == [LABELS[i] for i in range(5)] and model.layers["gradcam"] == "vit.layers.1.layernorm_before"
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), net.eval()(pixel_values=model.normalize(x)).logits, atol=1e-5)
    net.train()
    model(x)
    assert net.training and all(p.requires_grad for p in net.parameters())  # the user's module, untouched


def test_unreachable_hub_id_is_one_line(monkeypatch):
    from tests.clihelp import one_line_error, run

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.is_offline_mode", lambda: True)
    one_line_error(run("layers", "hf:nobody/no-such-model"), "hf:nobody/no-such-model", "save_pretrained folder")


def test_cli_layers_and_saliency_take_the_models_own_names(vit_folder, tmp_path, cat_png):
    from tests.clihelp import run

    listed = run("layers", f"hf:{vit_folder}")
    assert listed.exit_code == 0 and "vit.layers.1.layernorm_before" in listed.output, listed.output
    out = tmp_path / "s.png"
    result = run("saliency", cat_png, "--model", f"hf:{vit_folder}", "--methods", "gradcam", "--layer",
                 "vit.layers.0.layernorm_before", "--size", 64, "--out", out)
    assert result.exit_code == 0, result.output
    assert "kind" in result.output  # the class named from id2label
    assert np.load(tmp_path / "s-gradcam.npy").shape[-2:] == (43, 64)


def test_family_defaults_output_prefix_and_cam_layer():
    from synthviz.hf_models import model_of_hf

    convnext = transformers.ConvNextForImageClassification(transformers.ConvNextConfig(
        hidden_sizes=[8, 16, 16, 16], depths=[1, 1, 1, 1], num_labels=3))
    swin = transformers.SwinForImageClassification(transformers.SwinConfig(
        image_size=32, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[2, 2], window_size=2, num_labels=3))
    clip = transformers.CLIPVisionModelWithProjection(transformers.CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8,
        projection_dim=16))
    x = torch.rand(1, 3, 32, 32)
    got = {type(n).__name__: model_of_hf(n) for n in (convnext, swin, clip)}
    m = got["ConvNextForImageClassification"]
    assert m.prefix_tokens is None and "gradcam" not in m.layers and m(x).shape == (1, 3)  # a CNN: no tokens
    m = got["SwinForImageClassification"]
    assert m.prefix_tokens == 0 and m.layers["gradcam"] == "swin.encoder.layers.1.blocks.0.layernorm_before"
    m = got["CLIPVisionModelWithProjection"]
    assert m.prefix_tokens == 1 and m.classes is None
    with torch.no_grad():  # the default field of a CLIP vision tower: image_embeds
        assert torch.allclose(m(x), clip(pixel_values=m.normalize(x)).image_embeds, atol=1e-6)
    for net in (convnext, swin, clip):
        assert synthviz.saliency(model_of_hf(net), x, method="gradcam", target=0).shape == (1, 1, 32, 32)
