"""OpenCLIP models (``open_clip:ARCH``) and text targets, on a tiny random config registered with
open_clip (no download): the image tower is the model, a text target's gradient equals autograd of
the cosine similarity computed by hand with open_clip, and classviz renders a prompt."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

import synthviz
from synthviz import targets
from synthviz.errors import SynthvizError
from tests.clihelp import one_line_error, run

open_clip = pytest.importorskip("open_clip")
TINY = "SynthvizTinyCLIP"
CONFIG = {"embed_dim": 16,
          "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
          "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}}


@pytest.fixture(scope="module", autouse=True)
def tiny_config(tmp_path_factory):
    """Register the tiny architecture with open_clip (its public add_model_config)."""
    folder = tmp_path_factory.mktemp("open_clip")
    (folder / f"{TINY}.json").write_text(json.dumps(CONFIG))
    open_clip.add_model_config(folder)


@pytest.fixture(scope="module")
def clip():
    return synthviz.load_model(f"open_clip:{TINY}", weights="random")


def test_image_tower_is_the_model(clip):
    x = torch.rand(2, 3, 32, 32)
    whole = clip.net.clip
    cfg = open_clip.get_model_preprocess_cfg(whole)
    mean, std = torch.tensor(cfg["mean"]).view(1, 3, 1, 1), torch.tensor(cfg["std"]).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(clip(x), whole.encode_image((x - mean) / std), atol=1e-5)
    assert clip.input_size == (32, 32) and clip.prefix_tokens == 1
    assert clip.layers["gradcam"] == "visual.transformer.resblocks.1.ln_1"
    assert not any(n.startswith("transformer") for n, _ in clip.net.named_modules())  # no text tower layers


def test_text_target_gradient_equals_hand_cosine(clip):
    x = torch.rand(2, 3, 32, 32)
    prompts = ["a photo of a cat", "a red bicycle"]
    target = targets.text(clip, prompts)  # one prompt per image
    ours = x.clone().requires_grad_(True)
    target(clip(ours)).sum().backward()

    whole = clip.net.clip
    tokenizer = open_clip.get_tokenizer(TINY)
    cfg = open_clip.get_model_preprocess_cfg(whole)
    mean, std = torch.tensor(cfg["mean"]).view(1, 3, 1, 1), torch.tensor(cfg["std"]).view(1, 3, 1, 1)
    theirs = x.clone().requires_grad_(True)
    with torch.no_grad():
        text = whole.encode_text(tokenizer(prompts))
    image = whole.encode_image((theirs - mean) / std)
    F.cosine_similarity(image, text, dim=1).sum().backward()
    assert ours.grad.abs().max() > 0
    assert torch.allclose(ours.grad, theirs.grad, atol=1e-6, rtol=1e-4)


def test_text_target_needs_a_clip_model(embedded):
    with pytest.raises(SynthvizError, match="open_clip"):
        targets.text(embedded, "a cat")


def test_state_dict_weights_load(clip, tmp_path):
    path = tmp_path / "clip.pt"
    torch.save(clip.net.clip.state_dict(), path)
    again = synthviz.load_model(f"open_clip:{TINY}", weights=str(path))
    assert torch.equal(again.net.visual.conv1.weight, clip.net.visual.conv1.weight)


def test_classviz_cli_renders_a_prompt(tmp_path):
    out = tmp_path / "b.png"
    result = run("classviz", "--model", f"open_clip:{TINY}", "--weights", "random", "--text", "a red bicycle",
                 "--steps", 2, "--size", 32, "--out", out)
    assert result.exit_code == 0, result.output
    assert out.exists() and synthviz.io.load_image(out).shape[-2:] == (32, 32)
    assert "a red bicycle" in result.output
    contrast = run("classviz", "--model", f"open_clip:{TINY}", "--weights", "random", "--text", "a red bicycle",
                   "--versus", "a blue bicycle", "--steps", 2, "--size", 32, "--out", tmp_path / "v.png")
    assert contrast.exit_code == 0 and "blue" in contrast.output, contrast.output


def test_text_flag_on_a_classifier_is_one_line(tmp_path):
    result = run("classviz", "--weights", "random", "--text", "a cat", "--steps", 1, "--size", 32,
                 "--out", tmp_path / "c.png")
    one_line_error(result, "open_clip")


def test_saliency_cli_explains_a_prompt(tmp_path, cat_png):
    out = tmp_path / "s.png"
    result = run("saliency", cat_png, "--model", f"open_clip:{TINY}", "--weights", "random", "--text", "a cat",
                 "--methods", "gradient,gradcam", "--size", 32, "--out", out)
    assert result.exit_code == 0, result.output
    assert out.exists() and (tmp_path / "s-gradcam.npy").exists()


def test_missing_open_clip_names_the_extra(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_open_clip(name, *args, **kwargs):
        if name == "open_clip":
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_open_clip)
    with pytest.raises(SynthvizError, match=r"synthviz\[clip\]"):
        synthviz.load_model(f"open_clip:{TINY}", weights="random")


def test_unknown_architecture_is_one_line():
    with pytest.raises(SynthvizError, match="unknown open_clip model 'NoSuchArch'"):
        synthviz.load_model("open_clip:NoSuchArch", weights="random")
