"""Fast style: the transformation network, conditional instance norm, training, masks and video."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from clihelp import one_line_error, run
from synthviz.faststyle.checkpoint import load_net, save_checkpoint
from synthviz.faststyle.loss import PerceptualLoss
from synthviz.faststyle.masks import saliency_mask
from synthviz.faststyle.net import CondInstanceNorm, TransformNet, single_style
from synthviz.faststyle.train import train_style_net
from synthviz.faststyle.video import read_video, stylize_video, temporal_error, write_video
from synthviz.faststyle.video_style import style_video
from synthviz.io import resize, save_image
from synthviz.techniques.stylize import stylize


def tiny_net(styles: int = 2, seed: int = 0) -> TransformNet:
    torch.manual_seed(seed)
    return TransformNet(styles, (4, 8, 8), 1).eval()


@pytest.fixture(scope="module")
def photos():
    import skimage.data

    from synthviz.io import to_tensor

    return {n: to_tensor(getattr(skimage.data, n)()) for n in ("chelsea", "astronaut", "coffee", "immunohistochemistry",
                                                               "hubble_deep_field")}


@pytest.fixture(scope="module")
def content_folder(tmp_path_factory, photos):
    folder = tmp_path_factory.mktemp("content")
    for n in ("chelsea", "astronaut", "coffee"):
        save_image(resize(photos[n], 96), folder / f"{n}.png")
    return folder


def clip(photo: torch.Tensor, frames: int = 5, side: int = 48, step: int = 3) -> torch.Tensor:
    """A camera pan: (frames, 3, side, side) crops moving ``step`` px right per frame."""
    big = resize(photo, 128)
    return torch.cat([big[..., 20 : 20 + side, 10 + step * t : 10 + step * t + side] for t in range(frames)])


@pytest.mark.parametrize("shape", [(1, 33, 47), (2, 17, 9), (1, 64, 65), (1, 8, 8)])
def test_network_keeps_odd_sizes(shape):
    b, h, w = shape
    assert tiny_net()(torch.rand(b, 3, h, w), 1).shape == (b, 3, h, w)


def test_conditional_norm_one_hot_equals_single_style():
    torch.manual_seed(0)
    cin = CondInstanceNorm(6, styles=3, init_spread=0.5)
    x = torch.randn(2, 6, 9, 7)
    for k in range(3):
        plain = nn.InstanceNorm2d(6, affine=True)  # the single-style path, computed by torch
        plain.weight.data, plain.bias.data = cin.gamma[k].detach().clone(), cin.beta[k].detach().clone()
        one_hot = torch.nn.functional.one_hot(torch.tensor([k, k]), 3).float()
        torch.testing.assert_close(cin(x, one_hot), plain(x), rtol=1e-5, atol=1e-5)
    net = tiny_net(3)
    y = torch.rand(1, 3, 21, 19)
    outs = [net(y, k) for k in range(3)]
    for k in range(3):
        torch.testing.assert_close(outs[k], single_style(net, k)(y))
    assert (outs[0] - outs[1]).abs().mean() > 1e-3  # per-style (γ, β) start different


def test_mix_one_zero_is_style_zero(tmp_path, photos):
    net = tiny_net(2)
    image = resize(photos["chelsea"], 40)
    zero = stylize(image=image, net=net, style=0).images
    torch.testing.assert_close(stylize(image=image, net=net, mix="1,0").images, zero, rtol=0, atol=0)
    half = stylize(image=image, net=net, mix=[0.5, 0.5]).images
    averaged = single_style(net, 0)
    for mod, src in zip(averaged.modules(), net.modules()):
        if isinstance(mod, CondInstanceNorm):
            mod.gamma.data, mod.beta.data = src.gamma.mean(0, keepdim=True), src.beta.mean(0, keepdim=True)
    with torch.no_grad():
        torch.testing.assert_close(half, averaged(image), rtol=1e-5, atol=1e-5)
    assert (half - zero).abs().mean() > 1e-4


def test_training_lowers_style_loss_and_resumes(tmp_path, embedded, photos, content_folder):
    styles = [photos["immunohistochemistry"], photos["hubble_deep_field"]]
    out = tmp_path / "net.pt"
    # Gram: at this toy scale (6 updates per style) moments' loss is too noisy to fall reliably
    kw = dict(out=out, size=48, batch_size=2, lr=1e-2, channels=(4, 8, 8), res_blocks=1, sample_every=0, stat="gram")
    train_style_net(embedded, styles, content_folder, steps=1, **kw)
    before, names = load_net(out, "cpu")
    r = train_style_net(embedded, styles, content_folder, steps=12, resume=True, checkpoint_every=5, **kw)
    after, names_after = load_net(out, "cpu")
    assert r.info["steps"] == 12 and r.info["steps_this_run"] == 11 and names == names_after == ["style 0", "style 1"]
    assert torch.load(out, weights_only=True)["arch"] == {"styles": 2, "channels": [4, 8, 8], "res_blocks": 1}
    loss = PerceptualLoss(embedded, [resize(s, 48) for s in styles], stat="gram")  # as trained
    test_image = resize(photos["coffee"], 48)
    for k in range(2):
        with torch.no_grad():
            assert loss.style_loss(after(test_image, k), k) < 0.9 * loss.style_loss(before(test_image, k), k)
    with pytest.raises(Exception, match="exists"):
        train_style_net(embedded, styles, content_folder, steps=2, **kw)


def test_zero_mask_leaves_content(embedded, photos):
    net = tiny_net(2)
    image = resize(photos["astronaut"], 48)
    mask = torch.zeros(1, 1, 48, 48)
    mask[..., 24:] = 1
    out = stylize(image=image, net=net, style=1, masks=mask)
    torch.testing.assert_close(out.images[..., :24], image[..., :24], rtol=0, atol=0)
    torch.testing.assert_close(out.images[..., 24:], stylize(image=image, net=net, style=1).images[..., 24:])
    assert out.figure is not None and out.info["mask_coverage"] == pytest.approx(0.5)
    # the optimisation-based style: its guided loss inside the mask, the content untouched outside
    from synthviz.techniques.style import style

    r = style(embedded, image, photos["immunohistochemistry"], size=48, steps=4, scales=1, masks=[mask])
    torch.testing.assert_close(r.images[..., :24], image[..., :24], rtol=0, atol=1e-6)
    assert (r.images[..., 30:] - image[..., 30:]).abs().mean() > 1e-3


def test_saliency_mask_covers_the_cat(embedded, photos):
    image = resize(photos["chelsea"], 64)
    mask = saliency_mask(embedded, image, threshold=0.5)
    assert mask.shape == (1, 1, 43, 64) and set(mask.unique().tolist()) <= {0.0, 1.0} and 0.05 < mask.mean() < 0.95
    refined = saliency_mask(embedded, image, threshold=0.5, grabcut=True)
    assert refined.shape == mask.shape and 0 < refined.mean() < 1


def test_five_frame_clip_gives_five_frames_and_less_flicker(tmp_path, photos):
    frames = clip(photos["astronaut"])
    source = write_video(frames, tmp_path / "clip.mp4", fps=8)
    net = tiny_net(2)
    save_checkpoint(tmp_path / "net.pt", net, ["a", "b"])
    out = tmp_path / "out.mp4"
    result = run("stylize", source, "--net", tmp_path / "net.pt", "--style", 1, "--out", out)
    assert result.exit_code == 0, result.output
    styled, fps = read_video(out)
    read_frames, _ = read_video(source)
    assert styled.shape == (5, 3, 48, 48) and fps == 8
    independent = stylize_video(net, read_frames, [1], blend=0)
    blended = stylize_video(net, read_frames, [1], blend=0.7)
    e_ind, e_blend = temporal_error(independent, read_frames), temporal_error(blended, read_frames)
    assert e_blend["warp_error"] < 0.6 * e_ind["warp_error"]
    frozen = temporal_error(independent[:1].expand(5, -1, -1, -1), read_frames)
    assert frozen["relative"] == float("inf") and e_blend["relative"] < 0.5


def test_style_video_temporal_loss_lowers_flicker(embedded, photos):
    frames = clip(photos["astronaut"], frames=3, side=64)
    kw = dict(steps=8, later_steps=8)
    per_frame = style_video(embedded, frames, photos["immunohistochemistry"], temporal_weight=0, **kw)
    temporal = style_video(embedded, frames, photos["immunohistochemistry"], **kw)
    assert per_frame.images.shape == temporal.images.shape == frames.shape
    assert temporal.info["temporal"]["warp_error"] < 0.5 * per_frame.info["temporal"]["warp_error"]
    assert (temporal.images - frames).abs().mean() > (per_frame.images - frames).abs().mean()  # styled, not frozen


def test_cli_train_and_stylize(tmp_path, photos, content_folder):
    style_path = tmp_path / "ink.png"
    save_image(resize(photos["immunohistochemistry"], 96), style_path)
    net = tmp_path / "net.pt"
    result = run("style-train", style_path, style_path, "--content", content_folder, "--out", net, "--steps", 2,
                 "--size", 48, "--batch-size", 2, "--channels", "4,8,8", "--sample-every", 1)
    assert result.exit_code == 0, result.output
    assert load_net(net, "cpu")[1] == ["ink", "ink"] and (tmp_path / "net-samples" / "step-000002.png").exists()
    image = tmp_path / "in.png"
    save_image(resize(photos["coffee"], 41), image)
    assert run("stylize", image, "--net", net, "--mix", "0.3,0.7", "--out", tmp_path / "o.png").exit_code == 0
    assert run("stylize", content_folder, "--net", net, "--out", tmp_path / "folder").exit_code == 0
    assert len(list((tmp_path / "folder").glob("*.png"))) == 3
    one_line_error(run("stylize", image, "--net", net, "--mix", "1,2,3", "--out", tmp_path / "p.png"), "3 mixing weight")
    one_line_error(run("stylize", image, "--net", net, "--style", 5, "--out", tmp_path / "p.png"), "out of range")
    one_line_error(run("stylize", image, "--net", image, "--out", tmp_path / "p.png"), "style network")
    one_line_error(run("style-train", style_path, "--content", content_folder, "--out", net), "--resume")


def test_style_cli_on_a_video(tmp_path, photos):
    source = write_video(clip(photos["chelsea"], frames=3, side=64), tmp_path / "clip.mp4", fps=6)
    style_path = tmp_path / "ink.png"
    save_image(resize(photos["immunohistochemistry"], 96), style_path)
    out = tmp_path / "styled.gif"
    result = run("style", source, style_path, "--size", 64, "--steps", 3, "--out", out)
    assert result.exit_code == 0, result.output
    frames, fps = read_video(out)
    assert frames.shape == (3, 3, 64, 64) and fps == pytest.approx(6, rel=0.05)
    # the image-only options are one line with a video
    one_line_error(run("style", source, style_path, "--jitter", 0, "--out", tmp_path / "o.gif"),
                   "--checker-weight and --jitter work on an image CONTENT")
