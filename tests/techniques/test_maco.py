"""MaCo (phase-only, natural amplitude) and feature accentuation, on a toy ViT and the embedded CNN."""

from __future__ import annotations

import torch
from tiny import tiny_vit

import synthviz
from synthviz import objectives as obj
from synthviz.io import save_image
from synthviz.maco import MacoImage, amplitude_spectrum, default_spectrum, random_crops, resize_spectrum
from synthviz.models import load_model
from synthviz.params import correlate_colors
from synthviz.recipes import visualize


def test_shipped_spectrum_is_natural_and_recomputable(tmp_path, skimage_image):
    spec = default_spectrum()
    assert spec.shape == (3, 256, 129) and torch.isfinite(spec).all()
    row = spec.mean(0)[0]
    assert row[1] > 3 * row[8] > 9 * row[64]  # amplitude falls with frequency (about 1/f)
    for name in ("astronaut", "chelsea"):
        save_image(skimage_image(name)[0], tmp_path / f"{name}.png")
    mine = amplitude_spectrum(tmp_path, size=64)
    manual = 0
    for name in ("astronaut", "chelsea"):
        im = synthviz.load_image(tmp_path / f"{name}.png")
        side = min(im.shape[-2:])
        h0, w0 = (im.shape[-2] - side) // 2, (im.shape[-1] - side) // 2
        im = torch.nn.functional.interpolate(im[..., h0:h0 + side, w0:w0 + side], size=(64, 64), mode="bilinear",
                                             antialias=True, align_corners=False)
        manual = manual + torch.fft.rfft2(correlate_colors(im - im.mean((2, 3), keepdim=True)), norm="ortho").abs()[0]
    assert torch.allclose(mine, manual / 2, atol=1e-4)
    assert resize_spectrum(mine, 64, 64) is mine and resize_spectrum(mine, 32, 48).shape == (3, 32, 25)


def test_maco_learns_only_the_phase():
    p = MacoImage(2, 32)
    assert [n for n, _ in p.named_parameters()] == ["phase"]
    img = p()
    assert img.shape == (2, 3, 32, 32) and 0 < img.min() and img.max() < 1
    # the amplitude of the (standardised) image before colour mixing is the fixed one, up to a scale
    amp = p.amplitude
    spec = torch.polar(amp.expand_as(p.phase), p.phase)
    x = torch.fft.irfft2(spec, s=(32, 32), norm="ortho")
    inner = torch.fft.rfft2(x, norm="ortho").abs()[..., 1:-1]  # the real-valued columns aside
    assert torch.allclose(inner, amp[..., 1:-1].expand_as(inner), rtol=1e-3, atol=1e-4)


def test_random_crops_keep_the_size_and_differ_per_image():
    x = torch.rand(3, 3, 40, 40)
    crops = random_crops(None, noise=0)(x)
    assert crops.shape == x.shape and not torch.allclose(crops[0], crops[1])
    assert random_crops(24)(x).shape == (3, 3, 24, 24)
    full = random_crops(None, scale=(1.0, 1.0), noise=0)(x)
    assert torch.allclose(full, x, atol=1e-5)  # a crop of the whole canvas is the canvas


def test_maco_recipe_raises_a_vit_channel_and_a_cnn_channel(embedded):
    vit = load_model(tiny_vit())
    r = visualize(vit, obj.channel("encoder.layers.encoder_layer_1", 3), size=32, recipe="maco", steps=40)
    assert r.info["size"] == [32, 32] and r.history[-8:].mean() > r.history[:8].mean() + 0.1
    r = visualize(embedded, obj.channel("_blocks.8", 3), size=32, recipe="maco", steps=15)
    assert r.history[-4:].mean() > r.history[:4].mean() + 0.5


def test_accentuate_amplifies_while_staying_close(embedded, chelsea128):
    vit = load_model(tiny_vit())
    r = synthviz.accentuate(vit, chelsea128, layer="encoder.layers.encoder_layer_1", channel=3, steps=20)
    assert r.technique == "accentuate" and r.images.shape == (1, 3, 32, 32)  # the ViT's fixed size
    assert r.info["end"] > r.info["start"] + 0.5 and r.info["rms_change"] < 0.15
    assert r.figure.shape[0] == 3
    r = synthviz.accentuate(embedded, chelsea128, channel=3, size=32, steps=12, near="_blocks.3")
    assert r.info["end"] > r.info["start"] + 5 and r.info["rms_change"] < 0.15
    weak = synthviz.accentuate(embedded, chelsea128, channel=3, size=32, steps=12, strength=50.0)
    strong_change = synthviz.accentuate(embedded, chelsea128, channel=3, size=32, steps=12, strength=0.0)
    assert weak.info["rms_change"] < strong_change.info["rms_change"]
