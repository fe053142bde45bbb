"""Text targets on a Hugging Face CLIP model with a real ``CLIPTokenizer``, offline (issue 27): the
tokenizer is built from the BPE file open_clip ships (as open_clip's SimpleTokenizer builds its
vocabulary and merges), saved beside a tiny random ``CLIPModel``, and ``hf:FOLDER`` tokenizes the
prompts to open_clip's ids; the text target's gradient equals autograd of the cosine computed by
hand on open_clip's token ids."""

from __future__ import annotations

import gzip
import json

import pytest
import torch
import torch.nn.functional as F

import synthviz
from synthviz import targets as T

transformers = pytest.importorskip("transformers")
open_clip = pytest.importorskip("open_clip")
PROMPTS = ["a photo of a cat", "A red bicycle, parked!"]


def write_clip_tokenizer(folder) -> None:
    """vocab.json + merges.txt from open_clip's bpe_simple_vocab_16e6.txt.gz, the way
    ``open_clip.tokenizer.SimpleTokenizer`` builds them (bytes, bytes + ``</w>``, every merge, then
    the two special tokens, 49406 and 49407), then saved by transformers' CLIPTokenizer."""
    from open_clip.tokenizer import bytes_to_unicode, default_bpe

    merges = gzip.open(default_bpe()).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
    vocab = list(bytes_to_unicode().values())
    vocab += [v + "</w>" for v in vocab] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    transformers.CLIPTokenizer.from_pretrained(folder).save_pretrained(folder)


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hf-clip")
    config = transformers.CLIPConfig(
        text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                         vocab_size=49408, max_position_embeddings=77, bos_token_id=49406, eos_token_id=49407,
                         pad_token_id=1),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=8), projection_dim=16)
    torch.manual_seed(5)
    transformers.CLIPModel(config).save_pretrained(folder)
    write_clip_tokenizer(folder)
    return folder


def test_hf_clip_tokenizer_gives_open_clips_ids(clip_folder):
    model = synthviz.load_model(f"hf:{clip_folder}")
    tokenizer = model.net.tokenizer
    assert tokenizer is not None and model.layers["gradcam"] == "vision_model.encoder.layers.1.layer_norm1"
    assert model.prefix_tokens == 1 and model.classes is None
    ours = tokenizer(PROMPTS, padding=True, return_tensors="pt")["input_ids"]
    theirs = open_clip.get_tokenizer("ViT-B-32")(PROMPTS)
    for row, ref in zip(ours, theirs):
        n = int((ref != 0).sum())  # open_clip pads with 0, transformers with <|endoftext|>
        assert torch.equal(row[:n], ref[:n]) and ref[n - 1] == 49407


def test_hf_clip_text_target_gradient_equals_hand_cosine(clip_folder):
    model = synthviz.load_model(f"hf:{clip_folder}")
    net = transformers.CLIPModel.from_pretrained(clip_folder).eval()
    ids = open_clip.get_tokenizer("ViT-B-32")(PROMPTS)  # an independent tokenization (77 ids, 0-padded)
    with torch.no_grad():
        text = net.get_text_features(input_ids=ids).pooler_output
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    image = net.get_image_features(pixel_values=model.normalize(x)).pooler_output
    by_hand = F.cosine_similarity(image[:1], text[:1]) - F.cosine_similarity(image[:1], text[1:])
    by_hand = torch.cat([by_hand, F.cosine_similarity(image[1:], text[1:])])
    (grad,) = torch.autograd.grad(by_hand.sum(), x)
    contrast = T.text(model, PROMPTS[0], versus=PROMPTS[1])  # image 0: the contrast
    plain = T.text(model, PROMPTS[1])  # image 1: one prompt
    for i, target in enumerate((contrast, plain)):
        ours = synthviz.attribute(model, x[i:i + 1].detach(), "gradient", target=target, reduce="none").raw
        assert torch.allclose(ours, grad[i:i + 1], atol=1e-5 * float(grad[i].abs().max()) + 1e-9)


def test_cli_text_on_a_hf_clip_folder(clip_folder, cat_png, tmp_path):
    import numpy as np

    from synthviz.io import as_image
    from tests.clihelp import run

    result = run("saliency", cat_png, "--model", f"hf:{clip_folder}", "--text", PROMPTS[0], "--methods", "gradient",
                 "--size", 32, "--out", tmp_path / "t.png")
    assert result.exit_code == 0, result.output
    net = transformers.CLIPModel.from_pretrained(clip_folder).eval()
    model = synthviz.load_model(f"hf:{clip_folder}")
    with torch.no_grad():
        text = net.get_text_features(input_ids=open_clip.get_tokenizer("ViT-B-32")(PROMPTS[:1])).pooler_output
    x = as_image(cat_png, 32, batch=True).requires_grad_(True)  # (1, 3, 21, 32): the grid follows the size
    image = net.get_image_features(pixel_values=model.normalize(x), interpolate_pos_encoding=True).pooler_output
    (grad,) = torch.autograd.grad(F.cosine_similarity(image, text).sum(), x)
    saved = np.load(tmp_path / "t-gradient.npy")
    assert np.allclose(saved, grad.abs().amax(1, keepdim=True).numpy(), atol=1e-5 * float(grad.abs().max()))
