"""Parameterizations always give valid RGB; transforms keep the network's input shape fixed."""

from __future__ import annotations

import pytest
import torch

from synthviz import transforms as T
from synthviz.errors import SynthvizError
from synthviz.params import FourierImage, PixelImage, decorrelate_colors, correlate_colors, make_param


@pytest.mark.parametrize("kind", ["pixel", "fourier"])
@pytest.mark.parametrize("batch,size", [(1, 32), (3, (24, 40)), (2, 33)])
def test_output_is_valid_rgb(kind, batch, size):
    p = make_param(kind, batch=batch, size=size)
    h, w = (size, size) if isinstance(size, int) else size
    x = p()
    assert x.shape == (batch, 3, h, w) and x.dtype == torch.float32
    assert x.min() >= 0 and x.max() <= 1


@pytest.mark.parametrize("kind", ["pixel", "fourier"])
def test_init_from_an_image_reproduces_it(kind, chelsea128):
    p = make_param(kind, batch=2, size=128, init=chelsea128)
    assert (p.image() - chelsea128).abs().max() < 2e-3
    big = p.resized(160, 160)
    assert big.image().shape == (2, 3, 160, 160)


def test_colour_decorrelation_inverts():
    x = torch.randn(2, 3, 5, 7)
    torch.testing.assert_close(correlate_colors(decorrelate_colors(x)), x, atol=1e-5, rtol=1e-5)


def test_fourier_spectrum_favours_low_frequencies():
    torch.manual_seed(0)
    x = FourierImage(1, 64, decorrelate=False, sd=0.5)()
    spec = torch.fft.rfft2(torch.logit(x)).abs()
    assert spec[..., 1:4, 1:4].mean() > 4 * spec[..., 24:32, 24:32].mean()


def test_pixel_bounds_project():
    p = PixelImage(1, 8, init=torch.full((1, 3, 8, 8), 0.5))
    p.lower, p.upper = 0.45, 0.55
    with torch.no_grad():
        p.pixels += 1
    p.project()
    assert p.pixels.max().item() == pytest.approx(0.55)


def test_too_small_image_is_an_error():
    with pytest.raises(SynthvizError, match="too small"):
        make_param("fourier", size=4)


@pytest.mark.parametrize("transform,delta", [
    (T.pad(12), 24), (T.jitter(8), -8), (T.roll(16), 0), (T.random_affine(), 0), (T.random_scale(), 0),
    (T.random_rotate(), 0), (T.standard_transforms(), 12), (T.identity, 0),
])
def test_transforms_keep_a_fixed_shape(transform, delta):
    x = torch.rand(2, 3, 48, 48, requires_grad=True)
    shapes = {tuple(transform(x).shape) for _ in range(5)}
    assert shapes == {(2, 3, 48 + delta, 48 + delta)}
    transform(x).sum().backward()  # differentiable
    assert x.grad is not None


def test_random_affine_is_identity_at_zero():
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(T.random_affine((1.0, 1.0), 0.0)(x), x, atol=1e-4, rtol=0)
