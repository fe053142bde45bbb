"""Attention capture under fused kernels, rollout and Chefer arithmetic against hand computations."""

from __future__ import annotations

import math

import pytest
import torch
from tiny import tiny_vit

from synthviz.attribution.attention import chefer_of, class_token_map, recording_attention, rollout_of
from synthviz.models import load_model


def _state(net):
    return ({k: v.clone() for k, v in net.state_dict().items()},
            [(m.training, dict(m._forward_hooks), dict(m._forward_pre_hooks)) for m in net.modules()],
            [p.requires_grad for p in net.parameters()])


def _same_state(net, before):
    sd, mods, grads = before
    now_sd, now_mods, now_grads = _state(net)
    assert all(torch.equal(sd[k], now_sd[k]) for k in sd) and now_mods == mods and now_grads == grads


def test_identity_attention_rolls_out_to_identity():
    eye = torch.eye(5).expand(2, 3, 5, 5)  # (B, heads, N, N)
    for fusion in ("mean", "max", "min"):
        assert torch.allclose(rollout_of([eye, eye, eye], fusion), torch.eye(5).expand(2, 5, 5))
    assert torch.allclose(rollout_of([eye] * 2, discard_ratio=0.5), torch.eye(5).expand(2, 5, 5))


def test_two_block_rollout_and_chefer_by_hand():
    a1 = torch.tensor([[0.8, 0.2], [0.4, 0.6]]).view(1, 1, 2, 2)
    a2 = torch.tensor([[0.5, 0.5], [0.1, 0.9]]).view(1, 1, 2, 2)
    # Â1 = (A1 + I)/2 = [[.9, .1], [.2, .8]], Â2 = [[.75, .25], [.05, .95]]; R = Â2 Â1
    expected = torch.tensor([[0.725, 0.275], [0.235, 0.765]])
    assert torch.allclose(rollout_of([a1, a2])[0], expected)
    g1 = torch.tensor([[1.0, -1.0], [2.0, 0.5]]).view(1, 1, 2, 2)
    g2 = torch.tensor([[-1.0, 2.0], [1.0, 1.0]]).view(1, 1, 2, 2)
    # Ā1 = (G1⊙A1)+ = [[.8, 0], [.8, .3]]; R1 = I + Ā1 = [[1.8, 0], [.8, 1.3]]
    # Ā2 = [[0, 1], [.1, .9]]; R2 = R1 + Ā2 R1 = [[1.8+.8, 1.3], [.8+.18+.72, 1.3+1.17]]
    r2 = torch.tensor([[2.6, 1.3], [1.7, 2.47]])
    assert torch.allclose(chefer_of([a1, a2], [g1, g2])[0], r2)


def test_discard_ratio_drops_the_lowest_weights_but_not_the_class_token():
    a = torch.tensor([[0.05, 0.5, 0.45], [0.2, 0.7, 0.1], [0.3, 0.32, 0.38]]).view(1, 1, 3, 3)
    kept = a[0, 0].clone()
    kept.view(-1)[[2 * 3 + 0, 1 * 3 + 2, 1 * 3 + 0]] = 0  # the 4 lowest are 0.05 ([0, 0], kept), 0.1, 0.2, 0.3
    kept[0, 0] = 0.05
    hand = (kept + torch.eye(3)) / 2
    hand = hand / hand.sum(-1, keepdim=True)
    assert torch.allclose(rollout_of([a], discard_ratio=4 / 9)[0], hand)


def test_uniform_attention_tiny_vit_rollout_matches_hand_computation():
    net = tiny_vit()
    for block in net.encoder.layers:  # q = k = 0: every token attends to all 17 uniformly
        with torch.no_grad():
            block.self_attention.in_proj_weight[:32] = 0
            block.self_attention.in_proj_bias[:32] = 0
    m = load_model(net)
    with recording_attention(net) as record, torch.no_grad():
        m(torch.rand(1, 3, 32, 32))
    u = torch.full((17, 17), 1 / 17)
    assert torch.allclose(record[0][0, 0], u)
    # ((U + I)/2)² = (3U + I)/4 since U² = U
    assert torch.allclose(rollout_of(list(record))[0], (3 * u + torch.eye(17)) / 4, atol=1e-6)
    cam = class_token_map(rollout_of(list(record)), (32, 32), 1)
    assert cam.shape == (1, 1, 4, 4) and torch.allclose(cam, torch.full_like(cam, 3 / 68))


def test_captured_attention_equals_unfused_computation_and_model_is_restored():
    net = tiny_vit()
    m = load_model(net)
    x = torch.rand(2, 3, 32, 32)
    before = _state(net)
    plain = m(x)
    inputs = {}
    hook = net.encoder.layers.encoder_layer_1.ln_1.register_forward_hook(lambda mod, i, o: inputs.setdefault("z", o))
    with recording_attention(net) as record:
        out = m(x)
    hook.remove()
    assert len(record) == 2 and record[1].shape == (2, 2, 17, 17)
    assert torch.allclose(out, plain, atol=1e-5)  # the recomputed attention gives the same outputs
    z, mha = inputs["z"], net.encoder.layers.encoder_layer_1.self_attention
    q = (z @ mha.in_proj_weight[:16].T + mha.in_proj_bias[:16]).view(2, 17, 2, 8).transpose(1, 2)
    k = (z @ mha.in_proj_weight[16:32].T + mha.in_proj_bias[16:32]).view(2, 17, 2, 8).transpose(1, 2)
    assert torch.allclose(record[1], torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(8), -1), atol=1e-6)
    _same_state(net, before)


def test_timm_fused_attention_is_captured_and_restored():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    net = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=5, img_size=32, patch_size=8,
                            depth=2).eval()
    flags = [b.attn.fused_attn for b in net.blocks]
    before = _state(net)
    x = torch.rand(1, 3, 32, 32)
    inputs = {}
    hook = net.blocks[0].norm1.register_forward_hook(lambda mod, i, o: inputs.setdefault("z", o))
    with recording_attention(net) as record:
        net(x)
    hook.remove()
    attn = net.blocks[0].attn
    qkv = attn.qkv(inputs["z"]).reshape(1, 17, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    manual = torch.softmax(qkv[0] @ qkv[1].transpose(-1, -2) * attn.scale, -1)
    assert torch.allclose(record[0], manual, atol=1e-6)
    assert [b.attn.fused_attn for b in net.blocks] == flags
    _same_state(net, before)
