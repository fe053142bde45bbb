"""Saliency on transformers and on models that are not classifiers, against explicit autograd."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from clihelp import run
from tiny import TinyEmbedder, TinyRegressor, TinySegmenter, tiny_vit

import synthviz
from synthviz import targets as T
from synthviz.io import save_image
from synthviz.models import load_model


def _state(net):
    return ({k: v.clone() for k, v in net.state_dict().items()},
            [(m.training, len(m._forward_hooks), len(m._forward_pre_hooks), getattr(m, "fused_attn", None))
             for m in net.modules()], [p.requires_grad for p in net.parameters()])


def _assert_same_state(net, before):
    sd, mods, grads = _state(net)
    assert all(torch.equal(before[0][k], sd[k]) for k in sd) and mods == before[1] and grads == before[2]


def test_gradcam_on_a_vit_block_equals_explicit_autograd_on_reshaped_tokens():
    net = tiny_vit()
    m = load_model(net)
    x = torch.rand(2, 3, 32, 32)
    layer = "encoder.layers.encoder_layer_0"
    att = synthviz.attribute(m, x, "gradcam", target=[3, 7], layer=layer)
    kept = {}
    hook = net.encoder.layers.encoder_layer_0.register_forward_hook(lambda mod, i, o: kept.setdefault("t", o))
    with torch.enable_grad():
        xr = x.clone().requires_grad_(True)
        logits = net((xr - m.mean) / m.std)
        tokens = kept["t"]
        (grad,) = torch.autograd.grad(logits[0, 3] + logits[1, 7], tokens)
    hook.remove()
    a = tokens.detach()[:, 1:].reshape(2, 4, 4, 16).permute(0, 3, 1, 2)
    g = grad[:, 1:].reshape(2, 4, 4, 16).permute(0, 3, 1, 2)
    cam = (g.mean((2, 3), keepdim=True) * a).sum(1, keepdim=True)
    assert torch.allclose(att.raw, cam, atol=1e-5)
    assert torch.allclose(att.maps, F.interpolate(cam.clamp(min=0), size=(32, 32), mode="bilinear"), atol=1e-5)


def test_default_cam_layer_reaches_the_class_token():
    m = load_model(tiny_vit())
    x = torch.rand(1, 3, 32, 32)
    att = synthviz.attribute(m, x, "gradcam")
    assert att.info["layer"] == "encoder.layers.encoder_layer_1.ln_1" and att.raw.abs().sum() > 0
    last = synthviz.attribute(m, x, "gradcam", layer="encoder.layers.encoder_layer_1")
    assert last.raw.abs().sum() == 0  # the last block's patch tokens get no gradient from the class token


def _manual_vit(net, xn):
    """torchvision's ViT forward written out, with explicit attention weights (B, heads, N, N)."""
    b = len(xn)
    z = net._process_input(xn)
    z = torch.cat([net.class_token.expand(b, -1, -1), z], 1) + net.encoder.pos_embedding
    attentions = []
    for block in net.encoder.layers:
        y = block.ln_1(z)
        mha = block.self_attention
        q, k, v = F.linear(y, mha.in_proj_weight, mha.in_proj_bias).chunk(3, -1)
        q, k, v = (t.reshape(b, -1, mha.num_heads, 16 // mha.num_heads).transpose(1, 2) for t in (q, k, v))
        a = (q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])).softmax(-1)
        attentions.append(a)
        z = z + mha.out_proj((a @ v).transpose(1, 2).reshape(b, -1, 16))
        z = z + block.mlp(block.ln_2(z))
    return net.heads(net.encoder.ln(z)[:, 0]), attentions


def test_chefer_and_rollout_equal_hand_computations_and_leave_the_model_as_it_was():
    net = tiny_vit(layers=3)
    m = load_model(net)
    x = torch.rand(2, 3, 32, 32)
    before = _state(net)
    att = synthviz.attribute(m, x, "chefer", target=[1, 4])
    roll = synthviz.attribute(m, x, "rollout", head_fusion="max", discard_ratio=0.5)
    _assert_same_state(net, before)
    with torch.enable_grad():
        logits, attentions = _manual_vit(net, (x.clone().requires_grad_(True) - m.mean) / m.std)
        grads = torch.autograd.grad(logits[0, 1] + logits[1, 4], attentions)
    assert torch.allclose(logits, m(x), atol=1e-5)
    r = torch.eye(17).expand(2, 17, 17)
    for a, g in zip(attentions, grads):
        r = r + (g * a).clamp(min=0).mean(1) @ r
    assert torch.allclose(att.raw, r[:, 0, 1:].reshape(2, 1, 4, 4), atol=1e-5)
    assert att.maps.shape == (2, 1, 32, 32) and att.targets == [1, 4]
    # rollout by hand: max over heads, drop the lowest half (not [0, 0]), (A + I)/2, renormalise
    r = torch.eye(17).expand(2, 17, 17)
    for a in attentions:
        f = a.detach().amax(1).reshape(2, -1)
        for i in range(2):
            low = f[i].argsort()[: int(17 * 17 * 0.5)]
            low = low[low != 0]
            f[i, low] = 0
        f = (f.reshape(2, 17, 17) + torch.eye(17)) / 2
        r = (f / f.sum(-1, keepdim=True)) @ r
    assert torch.allclose(roll.raw, r[:, 0, 1:].reshape(2, 1, 4, 4), atol=1e-6)
    assert torch.allclose(roll.maps.flatten(1).amax(1), torch.ones(2))


def test_any_target_drives_saliency():
    x = torch.rand(2, 3, 32, 32)
    reg = load_model(TinyRegressor())
    att = synthviz.attribute(reg, x, "gradient", reduce="none")  # default: the one output
    xr = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(reg.net(reg.normalize(xr))[:, 0].sum(), xr)
    assert torch.allclose(att.raw, g, atol=1e-6)
    emb = load_model(TinyEmbedder())
    ref = torch.rand(1, 3, 32, 32)
    sim = T.similar_to(emb, ref)
    att = synthviz.attribute(emb, x, "gradient", target=sim, reduce="none")
    xr = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(F.cosine_similarity(emb(xr), emb(ref).detach(), dim=1).sum(), xr)
    assert torch.allclose(att.raw, g, atol=1e-6) and att.targets[0].startswith("similarity")
    seg = load_model(TinySegmenter())
    mask = torch.zeros(32, 32)
    mask[4:12, 6:20] = 1
    att = synthviz.attribute(seg, x, "integrated_gradients", target=T.in_mask(1, mask), steps=8)
    xr = x.clone().requires_grad_(True)
    out = seg(xr)[:, 1] * mask
    assert abs(att.info["delta"][0] - (out[0].sum() - (seg(torch.zeros_like(x))[0, 1] * mask).sum()).item()) < 1e-4
    for method in ("smoothgrad", "gradcam", "occlusion"):  # expanded batches keep per-image targets
        assert synthviz.attribute(emb, x, method, target=sim, samples=2).maps.shape == (2, 1, 32, 32)


@pytest.fixture(scope="module")
def vit_ckpt(tmp_path_factory):
    m = load_model("vit_b_16", weights="random")
    torch.manual_seed(0)
    torch.nn.init.normal_(m.net.heads.head.weight, std=0.02)
    path = tmp_path_factory.mktemp("ckpt") / "vit_b_16.pt"
    torch.save(m.net.state_dict(), path)
    return path


def test_cli_vit_saliency_maps_at_the_input_resolution_and_probe(tmp_path, vit_ckpt, chelsea):
    photo = save_image(synthviz.io.resize(chelsea, (224, 224))[0], tmp_path / "cat.png")
    out = tmp_path / "vit.png"
    res = run("saliency", photo, "--model", "vit_b_16", "--weights", vit_ckpt, "--methods", "gradcam,rollout,chefer",
              "--device", "cpu", "--out", out)
    assert res.exit_code == 0, res.output
    for method in ("gradcam", "rollout", "chefer"):
        maps = np.load(tmp_path / f"vit-{method}.npy")
        assert maps.shape == (1, 1, 224, 224) and np.abs(maps).sum() > 0, method
    res = run("probe", "encoder.layers.encoder_layer_6", "5", "--model", "vit_b_16", "--weights", vit_ckpt,
              "--steps", "2", "--device", "cpu", "--out", tmp_path / "probe.png")
    assert res.exit_code == 0, res.output
    assert synthviz.load_image(tmp_path / "probe.png").shape[-2:] == (224, 224)
