"""Foundation models on the command line and their attention: rollout and Chefer on a Hugging Face
ViT (transformers 5 runs SDPA, so the capture switches to eager attention and back), ``--output``
picking a field of a structured output, ``synthviz layers`` printing the family's facts, and a text
contrast (``--versus``)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import synthviz
from synthviz import targets as T
from synthviz.attribution.attention import rollout_of
from synthviz.models import Model
from tests.clihelp import one_line_error, run

transformers = pytest.importorskip("transformers")
LABELS = {i: f"kind{i}" for i in range(5)}


def tiny_config():
    return transformers.ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                  image_size=32, patch_size=8, num_labels=5, id2label=LABELS,
                                  label2id={v: k for k, v in LABELS.items()})


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A tiny ViTForImageClassification and a tiny ViTModel (no head), saved with save_pretrained."""
    root = tmp_path_factory.mktemp("hf-foundation")
    torch.manual_seed(2)
    transformers.ViTForImageClassification(tiny_config()).save_pretrained(root / "vit")
    transformers.ViTModel(tiny_config()).save_pretrained(root / "vit-base")
    return root


def test_rollout_and_chefer_switch_to_eager_attention_and_back(folders):
    net = transformers.ViTForImageClassification.from_pretrained(folders / "vit").train()
    assert net.config._attn_implementation == "sdpa"
    configs = dict(vars(net.config))
    model = synthviz.load_model(net)
    x = torch.rand(1, 3, 32, 32)
    rollout = synthviz.attribute(model, x, "rollout", discard_ratio=0.0)
    chefer = synthviz.attribute(model, x, "chefer", target=2)
    assert rollout.info["blocks"] == chefer.info["blocks"] == 2 and float(chefer.maps.max()) > 0
    assert vars(net.config) == configs and net.training  # the user's model exactly as it was
    assert all(p.requires_grad for p in net.parameters())
    net.eval().set_attn_implementation("eager")  # transformers' own attention weights, by hand
    with torch.no_grad():
        attentions = net(pixel_values=model.normalize(x), output_attentions=True).attentions
    relevance = rollout_of(list(attentions))
    row = relevance[:, 0, 1:].reshape(1, 1, 4, 4)
    assert torch.allclose(rollout.raw, row, atol=1e-6)


def test_cli_gradcam_rollout_chefer_on_a_saved_folder(folders, tmp_path, cat_png):
    out = tmp_path / "s.png"
    result = run("saliency", cat_png, "--model", f"hf:{folders / 'vit'}", "--methods", "gradcam,rollout,chefer",
                 "--size", 64, "--out", out)
    assert result.exit_code == 0, result.output
    for method in ("gradcam", "rollout", "chefer"):
        maps = np.load(tmp_path / f"s-{method}.npy")
        assert maps.shape == (1, 1, 43, 64) and maps.max() > 0, method


def test_output_picks_a_field_of_the_structured_output(folders, tmp_path, cat_png):
    from synthviz.io import as_image

    out = tmp_path / "p.png"
    result = run("saliency", cat_png, "--model", f"hf:{folders / 'vit-base'}", "--output", "pooler_output",
                 "--output-index", 3, "--methods", "gradient", "--size", 32, "--out", out)
    assert result.exit_code == 0, result.output
    net = transformers.ViTModel.from_pretrained(folders / "vit-base").eval()
    model = synthviz.load_model(f"hf:{folders / 'vit-base'}")
    x = as_image(cat_png, 32, batch=True).requires_grad_(True)
    pooled = net(pixel_values=model.normalize(x), interpolate_pos_encoding=True).pooler_output
    (grad,) = torch.autograd.grad(pooled[:, 3].sum(), x)
    assert np.allclose(np.load(tmp_path / "p-gradient.npy"), grad.abs().amax(1, keepdim=True).numpy(), atol=1e-6)
    one_line_error(run("saliency", cat_png, "--model", f"hf:{folders / 'vit-base'}", "--output", "image_embeds",
                       "--methods", "gradient", "--size", 32, "--out", tmp_path / "q.png"),
                   "no field 'image_embeds'", "last_hidden_state")
    # classviz takes the same field: unit 3 of the pooled output rises over the render
    viz = run("classviz", "--model", f"hf:{folders / 'vit-base'}", "--output", "pooler_output", "--output-index", 3,
              "--steps", 4, "--size", 32, "--out", tmp_path / "v.png")
    assert viz.exit_code == 0, viz.output
    start, end = (float(v) for v in re.search(r"([-\d.e]+) at the start, ([-\d.e]+) at the end", viz.output).groups())
    assert end > start


def test_layers_prints_output_cam_layer_and_prefix_tokens(folders):
    result = run("layers", f"hf:{folders / 'vit'}", "--size", 32)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "# output: logits (5,); fields: logits (--output picks another)"
    assert lines[1] == "# CAM layer: vit.layers.1.layernorm_before"
    assert lines[2].startswith("# prefix tokens: 1 ")


def test_text_versus_is_the_difference_of_the_two_cosines():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    words = {"a cat": torch.tensor([1.0, 0, 0, 0]), "a dog": torch.tensor([0, 1.0, 1.0, 0])}
    net.embed_text = lambda prompts: torch.stack([words[p] for p in prompts])  # a text tower of two prompts
    model = Model(net, name="clip-like")
    x = torch.rand(2, 3, 16, 16)
    emb = model(x)
    expected = F.cosine_similarity(emb, words["a cat"][None]) - F.cosine_similarity(emb, words["a dog"][None])
    target = T.from_options(model, text=["a cat"], versus=["a dog"]).for_batch(2)
    assert torch.allclose(target(emb), expected, atol=1e-6)
    with pytest.raises(synthviz.errors.SynthvizError, match="--versus needs --text"):
        T.from_options(model, versus=["a dog"])
