"""AdaIN (issue 30): the normalisation equals its formula, alpha 0 gives the content's features
back, the decoder keeps odd sizes, a few training steps lower the loss and resume continues them,
and ``synthviz stylize --style-image`` paints with a style image it never saw."""

import pytest
import torch
from clihelp import one_line_error, run

from tiny import make_tiny_model
from synthviz.errors import SynthvizError
from synthviz.faststyle.adain import AdaIN, AdaINNet, Decoder, adain, default_decoder
from synthviz.faststyle.adain_train import load_adain, save_adain, train_adain
from synthviz.io import read_images, resize, save_image


def test_adain_equals_its_formula_per_image_and_channel():
    torch.manual_seed(0)
    x, y = torch.randn(2, 3, 5, 7) * 3 + 1, torch.randn(2, 3, 4, 9) * 0.5 - 2
    out = adain(x, y, eps=0.0)
    for b in range(2):
        for c in range(3):
            xs, ys = x[b, c].flatten(), y[b, c].flatten()
            mx, sx = xs.mean(), (((xs - xs.mean()) ** 2).mean()).sqrt()
            my, sy = ys.mean(), (((ys - ys.mean()) ** 2).mean()).sqrt()
            torch.testing.assert_close(out[b, c], sy * (x[b, c] - mx) / sx + my, rtol=1e-5, atol=1e-5)
    # the result carries the style's statistics
    torch.testing.assert_close(out.mean((-2, -1)), y.mean((-2, -1)), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.std((-2, -1), unbiased=False), y.std((-2, -1), unbiased=False), rtol=1e-4, atol=1e-4)


def test_alpha_zero_gives_the_content_features_back():
    torch.manual_seed(1)
    x, y = torch.randn(1, 4, 6, 6), torch.randn(1, 4, 3, 3)
    assert torch.equal(AdaIN()(x, y, alpha=0.0), x)
    m = make_tiny_model()
    net = AdaINNet(m, "relu3", Decoder(default_decoder(m, "relu3")))
    content, style = torch.rand(1, 3, 40, 40), torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(net.target(content, [style], alpha=0.0), net.encode(content))
    assert not torch.allclose(net.target(content, [style], alpha=1.0), net.encode(content))


@pytest.mark.parametrize("size", [(37, 51), (33, 33), (64, 29)])
def test_decoder_output_keeps_odd_input_sizes(size):
    m = make_tiny_model()
    spec = default_decoder(m, "relu3")
    assert spec.in_channels == 16 and len(spec.widths) == 2  # relu3 has stride 4: two x2 stages
    net = AdaINNet(m, "relu3", Decoder(spec))
    with torch.no_grad():
        out = net(torch.rand(1, 3, *size), [torch.rand(1, 3, 40, 40)])
    assert out.shape == (1, 3, *size) and 0 <= float(out.min()) and float(out.max()) <= 1


@pytest.fixture(scope="module")
def folders(tmp_path_factory, skimage_image):
    root = tmp_path_factory.mktemp("adain")
    for sub, names in (("content", ("chelsea", "coffee", "astronaut")), ("styles", ("immunohistochemistry", "retina"))):
        (root / sub).mkdir()
        for n in names:
            save_image(resize(skimage_image(n), 64), root / sub / f"{n}.png")
    return root


def test_training_lowers_the_loss_and_resume_continues(folders):
    m = make_tiny_model()
    out = folders / "tiny-adain.pt"
    kw = dict(out=out, size=32, batch_size=2, lr=5e-3, sample_every=0, checkpoint_every=0)
    first = train_adain(m, folders / "content", folders / "styles", steps=20, **kw)
    assert first.info["layer"] == "relu3" and first.info["steps"] == 20
    before, after = first.info["first"], first.info["last"]
    assert after["content"] + after["style"] < 0.8 * (before["content"] + before["style"]), (before, after)
    with pytest.raises(SynthvizError, match="--resume"):
        train_adain(m, folders / "content", folders / "styles", steps=23, **kw)
    again = train_adain(m, folders / "content", folders / "styles", steps=23, resume=True, **kw)
    assert again.info["steps"] == 23 and again.info["steps_this_run"] == 3
    saved = torch.load(out, weights_only=True)
    assert saved["step"] == 23 and "optimizer" in saved
    loaded = load_adain(out, m)  # the decoder's weights come back
    for k, v in loaded.decoder.state_dict().items():
        assert torch.equal(v, saved["state_dict"][k])


def test_stylize_with_a_style_image_on_the_cli(tmp_path, embedded, folders):
    torch.manual_seed(0)
    layer = "_blocks.3"
    net = AdaINNet(embedded, layer, Decoder(default_decoder(embedded, layer)))
    path = save_adain(tmp_path / "adain.pt", net)
    photo, style = folders / "content" / "chelsea.png", folders / "styles" / "retina.png"
    res = run("stylize", photo, "--net", path, "--style-image", style, "--alpha", 0.5, "--preserve-colors",
              "--size", 45, "--out", tmp_path / "out.png")
    assert res.exit_code == 0, res.output
    (_, image), = read_images([tmp_path / "out.png"])
    assert image.shape[-1] == 45 and image.shape[-2] == 30  # chelsea at 45 px on its longer side
    one_line_error(run("stylize", photo, "--net", path, "--style", 0, "--out", tmp_path / "bad.png"), "--style-image")
