"""Prints (issue 30): the style and content gradient computed tile by tile with the full image's
Gram matrices equals the untiled autograd gradient where both fit (cosine >= 0.99), on the
embedded model's real receptive fields."""

import torch

from synthviz.io import resize
from synthviz.layers import Tap, capture
from synthviz.objectives import gram
from synthviz.painting import content_layer, style_layers
from synthviz.painting.tiles import tiled_gram, tiled_style_gradient, tiles


def test_tiles_cover_the_image_once():
    cores = tiles(100, 70, 32, 16)
    covered = torch.zeros(100, 70)
    for top, bottom, left, right in cores:
        covered[top:bottom, left:right] += 1
    assert torch.equal(covered, torch.ones(100, 70))


def test_tiled_gradient_equals_the_untiled_one(embedded, skimage_image):
    image = resize(skimage_image("astronaut"), 128)
    layers, c_layer = style_layers(embedded), content_layer(embedded)
    targets = {n: gram(v) for n, v in capture(embedded, resize(skimage_image("immunohistochemistry"), 96), layers).items()}
    c0 = capture(embedded, resize(skimage_image("coffee"), (128, 128)), [c_layer])[c_layer]
    weights = [1 / len(layers)] * len(layers)
    grad, loss = tiled_style_gradient(embedded, image, targets, weights, tile=64, margin=64, content=(c_layer, c0, 1.0))

    x = image.clone().requires_grad_(True)
    with Tap(embedded, [*layers, c_layer]) as tap:
        acts = tap(x)
    full = sum(w * (gram(acts[n]) - targets[n]).pow(2).sum() / targets[n].pow(2).sum() for n, w in zip(layers, weights))
    full = full + (acts[c_layer] - c0).pow(2).sum() / c0.pow(2).sum()
    expected, = torch.autograd.grad(full, x)
    assert float(torch.nn.functional.cosine_similarity(grad.flatten(), expected.flatten(), dim=0)) >= 0.99
    assert abs(loss - float(full.detach())) <= 1e-3 * float(full.detach())
    grams, counts = tiled_gram(embedded, image, layers, 64, 64)  # the statistics of the whole image
    for n in layers:
        torch.testing.assert_close(grams[n], gram(acts[n].detach()), rtol=2e-2, atol=1e-3)
