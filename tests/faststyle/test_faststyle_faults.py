"""Fast style and style as a careless user drives them (issue 26): every bad input a one-line error
naming the fix, nothing of the user's replaced, Ctrl-C that keeps and names what is done, and the
report telling the truth about how several styles are combined."""

from __future__ import annotations

import warnings

import pytest
import torch

from clihelp import cli_with, one_line_error, run
from synthviz.errors import SynthvizError
from synthviz.faststyle.checkpoint import FORMAT, load_net, save_checkpoint
from synthviz.faststyle.net import TransformNet
from synthviz.faststyle.video import read_video, stylize_video_file, write_video
from synthviz.io import claim_file, load_image, resize, save_image
from synthviz.techniques.stylize import stylize


@pytest.fixture
def tiny_net(tmp_path):
    """A two-style network (untrained, seeded) saved as ``net.pt``: (network, path)."""
    torch.manual_seed(0)
    net = TransformNet(2, (4, 8, 8), 1).eval()
    return net, save_checkpoint(tmp_path / "net.pt", net, ["a", "b"])


@pytest.fixture
def photo_folder(tmp_path, chelsea):
    folder = tmp_path / "photos"
    for k in range(3):
        save_image(resize(chelsea, 40 + 4 * k), folder / f"p{k}.png")
    return folder


@pytest.fixture
def style_png(tmp_path, skimage_image):
    return save_image(resize(skimage_image("immunohistochemistry"), 96), tmp_path / "ink.png")


def test_stylize_refuses_to_write_into_its_input_folder(tmp_path, tiny_net, photo_folder):
    before = {p.name: p.read_bytes() for p in photo_folder.iterdir()}
    for out, why in ((photo_folder, "is the input folder"), (photo_folder / ".", "is the input folder"),
                     (photo_folder / "styled", "is inside the input folder")):
        one_line_error(run("stylize", photo_folder, "--net", tiny_net[1], "--out", out, "--overwrite"), why,
                       "choose a folder outside")
    assert {p.name: p.read_bytes() for p in photo_folder.iterdir()} == before  # the photos untouched, nothing added
    ok = run("stylize", photo_folder, "--net", tiny_net[1], "--out", tmp_path / "styled")
    assert ok.exit_code == 0 and len(list((tmp_path / "styled").glob("*.png"))) == 3, ok.output


def test_an_all_zero_mask_is_one_line_for_style_and_stylize(tmp_path, tiny_net, chelsea, style_png):
    photo = save_image(resize(chelsea, 48), tmp_path / "cat.png")
    zero = save_image(torch.zeros(3, 32, 48), tmp_path / "zero.png")
    one_line_error(run("stylize", photo, "--net", tiny_net[1], "--style", 0, "--mask", zero, "--out",
                       tmp_path / "o.png"), f"the mask {zero} is empty", "paint the region")
    one_line_error(run("style", photo, style_png, "--mask", zero, "--size", 48, "--steps", 1, "--scales", 1,
                       "--out", tmp_path / "s.png"), f"the mask {zero} is empty")
    assert not (tmp_path / "o.png").exists() and not (tmp_path / "s.png").exists()


def test_two_styles_without_masks_say_how_they_are_blended(tmp_path, embedded, chelsea, style_png):
    photo = save_image(resize(chelsea, 48), tmp_path / "cat.png")
    res = run("style", photo, style_png, style_png, "--size", 48, "--steps", 1, "--scales", 1, "--out", tmp_path / "s.png")
    assert res.exit_code == 0, res.output
    assert "note: 2 style images and no --mask: their statistics are blended over the whole image with weights " \
           "0.5,0.5" in res.output, res.output
    from synthviz.techniques.style import style

    with pytest.warns(UserWarning, match="with weights 0.25,0.75"):
        style(embedded, photo, [style_png, style_png], blend="1,3", size=48, steps=1, scales=1)
    with warnings.catch_warnings():  # one style, or one mask per style: nothing to say
        warnings.simplefilter("error")
        style(embedded, photo, style_png, size=48, steps=1, scales=1)
    mask = save_image(torch.ones(3, 32, 48), tmp_path / "all.png")
    one_line_error(run("style", photo, style_png, "--mask", mask, "--blend", "1", "--size", 48, "--steps", 1,
                       "--out", tmp_path / "b.png"), "--blend and --mask do not go together")


def test_two_styles_without_masks_on_stylize_are_mixed_equally(tmp_path, tiny_net, chelsea):
    net, path = tiny_net
    image = resize(chelsea, 40)
    with pytest.warns(UserWarning, match=r"mixed with equal weights .*as --mix 0.5,0.5"):
        both = stylize(image=image, net=net, style=[0, 1])
    half = stylize(image=image, net=net, mix="0.5,0.5")
    torch.testing.assert_close(both.images, half.images, rtol=0, atol=0)
    assert (both.images - stylize(image=image, net=net, style=0).images).abs().mean() > 1e-4  # not style 0 alone
    assert both.labels == ["mix 0.5,0.5"] and "with mix 0.5,0.5" in both.info["report"]
    photo = save_image(image, tmp_path / "cat.png")
    res = run("stylize", photo, "--net", path, "--style", 0, "--style", 1, "--out", tmp_path / "o.png")
    assert res.exit_code == 0 and "with mix 0.5,0.5" in res.output and "note: 2 styles (0, 1) and no --mask" in res.output
    as_read = stylize(image=load_image(photo), net=net, mix="0.5,0.5").images  # the photo as the CLI read it
    torch.testing.assert_close(load_image(tmp_path / "o.png"), load_image(save_image(as_read, tmp_path / "h.png")))
    # a video: the same mixture on every frame
    clip = write_video(torch.stack([resize(chelsea, (32, 48))[0]] * 2), tmp_path / "clip.mp4", fps=4)
    with pytest.warns(UserWarning, match="mixed with equal weights"):
        mixed = stylize_video_file(net, clip, tmp_path / "v.mp4", style=[0, 1], blend=0)
    torch.testing.assert_close(mixed.images, stylize_video_file(net, clip, tmp_path / "w.mp4", mix=[1, 1], blend=0).images,
                               rtol=0, atol=0)


def test_bad_mix_is_blamed_on_mix(tmp_path, tiny_net, chelsea):
    photo = save_image(resize(chelsea, 40), tmp_path / "cat.png")
    line = one_line_error(run("stylize", photo, "--net", tiny_net[1], "--mix", "nan,1", "--out", tmp_path / "o.png"),
                          "--mix nan,1", "finite")
    assert "image" not in line
    with pytest.raises(SynthvizError, match="finite"):
        stylize(image=resize(chelsea, 40), net=tiny_net[0], mix=[float("inf"), 1])


@pytest.mark.parametrize("body, fragment", [
    ({"arch": {"styles": 2}, "styles": ["a", "b"]}, "missing 'channels'"),
    ({"arch": {"styles": 2, "channels": [4, 8, 8], "res_blocks": 1}, "styles": ["a", "b"], "state_dict": {}},
     "Missing key"),
    ({"arch": {"styles": 3, "channels": [4, 8, 8], "res_blocks": 1}, "styles": ["a", "b"], "state_dict": {}},
     "3 style(s) in the architecture"),
    ({"arch": {"styles": 1, "channels": [0, 0, 0], "res_blocks": 1}, "styles": ["a"], "state_dict": {}},
     "three positive channel widths"),
])
def test_a_checkpoint_with_a_broken_body_is_one_line_naming_it(tmp_path, chelsea, body, fragment):
    broken = tmp_path / "broken.pt"
    torch.save({"format": FORMAT, "step": 3, **body}, broken)
    photo = save_image(resize(chelsea, 40), tmp_path / "cat.png")
    one_line_error(run("stylize", photo, "--net", broken, "--out", tmp_path / "o.png"), f"{broken} is damaged",
                   fragment, "use another checkpoint")
    with pytest.raises(SynthvizError, match="is damaged"):
        load_net(broken)


@pytest.mark.parametrize("args, fragment", [
    (["--channels", "0,0,0"], "channels must be three positive widths like 16,32,48, not 0,0,0"),
    (["--channels", "8,16"], "channels must be three positive widths"),
    (["--lr", "nan"], "lr must be a finite number"),
    (["--steps", "0"], "steps must be positive"),
    (["--content-weight", "-1"], "content_weight must be 0 or more"),
    (["--stat", "mean"], "unknown style statistic 'mean'"),
])
def test_style_train_options_fail_before_any_work(tmp_path, args, fragment):
    # the style and the content do not exist: the option is refused before either is looked at
    one_line_error(run("style-train", tmp_path / "no-style.png", "--content", tmp_path / "none",
                       "--out", tmp_path / "net.pt", *args), fragment)
    assert not (tmp_path / "net.pt").exists()


def test_style_train_resume_without_a_checkpoint_is_an_error(tmp_path, style_png):
    out = tmp_path / "missing.pt"
    one_line_error(run("style-train", style_png, "--content", tmp_path, "--out", out, "--resume"),
                   f"--resume: no checkpoint to continue at {out}", "leave out --resume")
    assert not out.exists()
    broken = tmp_path / "broken.pt"  # a checkpoint whose body does not fit its format tag
    torch.save({"format": FORMAT, "arch": {"styles": 1}, "styles": ["ink"], "step": 3}, broken)
    one_line_error(run("style-train", style_png, "--content", tmp_path, "--out", broken, "--resume", "--steps", 5,
                       "--size", 48), f"{broken} is damaged", "missing 'channels'")


def test_two_runs_into_one_video_name_both_keep_their_file(tmp_path, tiny_net, chelsea):
    clip = write_video(torch.stack([resize(chelsea, (32, 48))[0]] * 2), tmp_path / "clip.mp4", fps=4)
    out = tmp_path / "out.mp4"
    with claim_file(out) as other:  # another run has claimed out.mp4 and is still encoding it
        assert other.path == out
        res = run("stylize", clip, "--net", tiny_net[1], "--blend", 0, "--out", out)
        assert res.exit_code == 0 and f"saved {tmp_path / 'out-1.mp4'}" in res.output, res.output
        assert not out.exists() and len(read_video(tmp_path / "out-1.mp4")[0]) == 2
        one_line_error(run("stylize", clip, "--net", tiny_net[1], "--out", out, "--overwrite"),
                       "being written by another synthviz run")
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".mp4") == ["clip.mp4", "out-1.mp4"]  # no claim left
    assert not list(tmp_path.glob(".*claim"))


def test_ctrl_c_in_style_train_saves_the_state_and_says_where(tmp_path, style_png, photo_folder):
    patch = """
        import synthviz.faststyle.train as train
        real = train._Training.step
        def step(self, s):
            if s == 3:  # three steps done
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(30)
            return real(self, s)
        train._Training.step = step
    """
    out = tmp_path / "net.pt"
    common = ["--content", photo_folder, "--out", out, "--size", 48, "--batch-size", 1, "--channels", "4,8,8",
              "--res-blocks", 1, "--sample-every", 0]
    proc = cli_with(patch, "style-train", style_png, *common, "--steps", 50, "--checkpoint-every", 0, cwd=tmp_path)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 130 and "Traceback" not in output, output
    assert f"interrupted at step 3 of 50: the train state is saved to {out}" in output and "--resume" in output, output
    saved = torch.load(out, weights_only=True)
    assert saved["step"] == 3 and "optimizer" in saved
    res = run("style-train", style_png, *common, "--steps", 5, "--resume")
    assert res.exit_code == 0 and "for 2 steps" in res.output, res.output
    assert torch.load(out, weights_only=True)["step"] == 5


def test_ctrl_c_in_stylize_of_a_folder_says_how_many_are_done(tmp_path, tiny_net, photo_folder):
    patch = """
        import synthviz.faststyle.stylize as fs
        real, calls = fs.stylize_image, [0]
        def stylize_image(*a, **k):
            calls[0] += 1
            if calls[0] == 3:  # two images written
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(30)
            return real(*a, **k)
        fs.stylize_image = stylize_image
    """
    out = tmp_path / "styled"
    proc = cli_with(patch, "stylize", photo_folder, "--net", tiny_net[1], "--out", out, cwd=tmp_path)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 130 and "Traceback" not in output, output
    assert f"interrupted: 2 of 3 image(s) stylized into {out} (p1.png last)" in output, output
    assert sorted(p.name for p in out.iterdir()) == ["p0.png", "p1.png"]  # whole images only, no temporary file
    assert load_image(out / "p1.png").shape == load_image(photo_folder / "p1.png").shape
    # the same command again resumes: the two finished images are kept, only the third is painted
    before = {n: (out / n).stat().st_mtime_ns for n in ("p0.png", "p1.png")}
    again = run("stylize", photo_folder, "--net", tiny_net[1], "--out", out)
    assert again.exit_code == 0, again.output
    assert "kept 2 image(s) already stylized" in again.output and "stylized 1 image(s)" in again.output, again.output
    assert sorted(p.name for p in out.iterdir()) == ["p0.png", "p1.png", "p2.png"]
    assert {n: (out / n).stat().st_mtime_ns for n in before} == before


@pytest.mark.parametrize("given, expected", [([], 4.0), (["--content-weight", "1"], 1.0)])
def test_style_train_trains_with_the_judged_content_weight_unless_told(tmp_path, style_png, photo_folder, given,
                                                                       expected):
    """style-train's content weight is 4 since 0.5 (docs/style.md: the judge's choice); the checkpoint
    records the weight the network was trained with."""
    out = tmp_path / "net.pt"
    res = run("style-train", style_png, "--content", photo_folder, "--out", out, "--size", 48, "--batch-size", 1,
              "--channels", "4,8,8", "--res-blocks", 1, "--sample-every", 0, "--steps", 1, *given)
    assert res.exit_code == 0, res.output
    assert torch.load(out, weights_only=True)["config"]["content_weight"] == expected
