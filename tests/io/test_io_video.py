"""Reading videos through the io layer: frames counted, a file that ends early reported (issue 26:
a truncated MP4 given to ``stylize`` says how many frames were read and that the file ended early)."""

from __future__ import annotations

import warnings

import imageio.v2 as iio2
import imageio_ffmpeg
import numpy as np
import pytest
import torch
from clihelp import one_line_error, run

from synthviz.errors import BadImage
from synthviz.faststyle.checkpoint import save_checkpoint
from synthviz.faststyle.net import TransformNet
from synthviz.io import VideoFrames, read_video

FRAMES = 20


def write_mp4(path, faststart: bool, frames: int = FRAMES):
    """An MP4 of ``frames`` random 32x48 frames at 10 fps written by imageio's ffmpeg writer; with
    ``faststart`` the index (moov atom) comes first, as in streamed and camera files."""
    rng = np.random.default_rng(0)
    params = ["-movflags", "+faststart"] if faststart else None
    with iio2.get_writer(path, format="FFMPEG", fps=10, macro_block_size=1, quality=7, output_params=params) as w:
        for _ in range(frames):
            w.append_data(rng.integers(0, 256, (32, 48, 3), dtype=np.uint8))
    return path


def truncate(path, share: float = 0.8):
    data = path.read_bytes()
    cut = path.with_name(f"cut-{path.name}")
    cut.write_bytes(data[: int(len(data) * share)])
    return cut


@pytest.fixture
def cut_mp4(tmp_path):
    return truncate(write_mp4(tmp_path / "clip.mp4", faststart=True))


def test_a_whole_video_reads_every_frame_without_a_note(tmp_path):
    path = write_mp4(tmp_path / "clip.mp4", faststart=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "ended early" for a whole file
        frames, fps = read_video(path)
    assert frames.shape == (FRAMES, 3, 32, 48) and fps == 10
    video = VideoFrames(path)
    assert sum(1 for _ in video) == FRAMES and video.count == FRAMES and video.expected == FRAMES
    assert not video.ended_early


def test_a_video_cut_at_80_percent_reports_the_frames_read(cut_mp4):
    peer, _ = imageio_ffmpeg.count_frames_and_secs(str(cut_mp4))  # what ffmpeg itself decodes
    assert 0 < peer < FRAMES
    with pytest.warns(UserWarning, match=rf"ended early: {peer} frame\(s\) read, but its header announces {FRAMES}"):
        frames, fps = read_video(cut_mp4)
    assert len(frames) == peer and fps == 10
    video = VideoFrames(cut_mp4)
    with pytest.warns(UserWarning, match="ended early"):
        list(video)
    assert video.ended_early and video.count == peer and video.expected == FRAMES


def test_stopping_on_purpose_is_not_an_early_end(cut_mp4):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frames, _ = read_video(cut_mp4, max_frames=3)
    assert len(frames) == 3


def test_a_cut_video_without_its_index_is_a_one_line_error(tmp_path):
    cut = truncate(write_mp4(tmp_path / "clip.mp4", faststart=False))  # the index was at the end: cut off
    with pytest.raises(BadImage, match="cut short or damaged"):
        read_video(cut)
    with pytest.raises(BadImage, match="video not found"):
        read_video(tmp_path / "missing.mp4")


def test_stylize_cli_notes_a_video_that_ended_early(tmp_path, cut_mp4):
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "net.pt", TransformNet(2, (4, 8, 8), 1).eval(), ["a", "b"])
    peer, _ = imageio_ffmpeg.count_frames_and_secs(str(cut_mp4))
    out = tmp_path / "out.mp4"
    res = run("stylize", cut_mp4, "--net", tmp_path / "net.pt", "--blend", 0, "--out", out)
    assert res.exit_code == 0, res.output
    notes = [line for line in res.output.splitlines() if line.startswith("note: ")]
    assert any(f"ended early: {peer} frame(s) read" in line for line in notes), res.output
    assert len(read_video(out)[0]) == peer
    one_line_error(run("stylize", truncate(write_mp4(tmp_path / "b.mp4", faststart=False)), "--net",
                       tmp_path / "net.pt", "--out", tmp_path / "o2.mp4"), "cut short or damaged")


def test_style_cli_notes_a_video_that_ended_early(tmp_path, skimage_image):
    cut = truncate(write_mp4(tmp_path / "short.mp4", faststart=True, frames=6))
    peer, _ = imageio_ffmpeg.count_frames_and_secs(str(cut))
    from synthviz.io import resize, save_image

    style = save_image(resize(skimage_image("immunohistochemistry"), 96), tmp_path / "ink.png")
    out = tmp_path / "styled.mp4"
    res = run("style", cut, style, "--size", 48, "--steps", 1, "--out", out)
    assert res.exit_code == 0, res.output
    notes = [line for line in res.output.splitlines() if line.startswith("note: ")]
    assert any(f"ended early: {peer} frame(s) read, but its header announces 6" in line for line in notes), res.output
    assert len(read_video(out)[0]) == peer
