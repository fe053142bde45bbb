"""The one mask reader (``synthviz.io.read_mask``) and its rules (issue 26): a 0/1 mask saved in
8 bits is read as binary, a mask of another size is resized with a note naming both sizes, an
all-zero mask is an error naming the file; the same reader behind faststyle, evaluate and targets."""

from __future__ import annotations

import warnings

import imageio.v3 as iio
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from synthviz import targets as T
from synthviz.errors import BadImage, BadValue
from synthviz.evaluation.inputs import load_masks as evaluation_masks
from synthviz.faststyle.masks import load_masks as style_masks
from synthviz.io import read_mask


def region(h: int = 24, w: int = 32) -> np.ndarray:
    """(H, W) booleans: a box in the upper left."""
    box = np.zeros((h, w), bool)
    box[4:14, 6:20] = True
    return box


def write(path, array: np.ndarray):
    iio.imwrite(path, array)
    return path


def test_a_0_1_mask_in_8_bits_is_read_as_binary(tmp_path):
    box = region()
    zero_one = write(tmp_path / "01.png", box.astype(np.uint8))          # values 0 and 1: almost black
    assert Image.open(zero_one).getextrema() == (0, 1)                     # as another library reads it
    full = write(tmp_path / "0255.png", box.astype(np.uint8) * 255)
    for mode in ("soft", "binary"):
        assert torch.equal(read_mask(zero_one, mode=mode), torch.from_numpy(box).float())
        assert torch.equal(read_mask(full, mode=mode), torch.from_numpy(box).float())
    sixteen = write(tmp_path / "16.png", box.astype(np.uint16) * 65535)
    assert torch.equal(read_mask(sixteen), torch.from_numpy(box).float())


def test_grey_levels_colour_and_alpha(tmp_path):
    grey = np.full((8, 8), 64, np.uint8)
    grey[:, 4:] = 200
    soft = read_mask(write(tmp_path / "grey.png", grey))
    assert torch.allclose(soft, torch.from_numpy(grey / 255.0).float())
    assert torch.equal(read_mask(tmp_path / "grey.png", mode="binary"), torch.from_numpy(grey > 127).float())
    red = np.zeros((8, 8, 3), np.uint8)
    red[2:5, 2:5, 0] = 255                                                   # a red region on black
    assert torch.equal(read_mask(write(tmp_path / "red.png", red), mode="binary"),
                       torch.from_numpy(red[..., 0] > 0).float())
    assert read_mask(tmp_path / "red.png").max() == pytest.approx(1 / 3)     # soft: the mean of R, G, B
    drawn_in_alpha = np.zeros((8, 8, 4), np.uint8)
    drawn_in_alpha[1:6, 3:7, 3] = 255                                        # black everywhere, opaque in the box
    assert torch.equal(read_mask(write(tmp_path / "alpha.png", drawn_in_alpha), mode="binary"),
                       torch.from_numpy(drawn_in_alpha[..., 3] > 0).float())


def test_another_size_is_resized_with_a_note_naming_both_sizes(tmp_path):
    path = write(tmp_path / "wide.png", region(24, 32).astype(np.uint8) * 255)
    with pytest.warns(UserWarning, match=r"wide.png \(32x24\) is resized to the image's size \(64x64\) "
                                         r"\(another aspect ratio: it is stretched\)"):
        m = read_mask(path, size=(64, 64))
    expected = F.interpolate(torch.from_numpy(region(24, 32)).float()[None, None], size=(64, 64),
                             mode="bilinear", align_corners=False)[0, 0]
    assert m.shape == (64, 64) and torch.allclose(m, expected)
    with pytest.warns(UserWarning, match=r"\(32x24\) is resized to the image's size \(16x12\)$"):  # same aspect
        half = read_mask(path, size=(12, 16), mode="binary")
    assert torch.equal(half, torch.from_numpy(region(24, 32)[::2, ::2]).float())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_mask(path, size=(24, 32))                                       # its own size: no note


def test_an_all_zero_mask_is_an_error_naming_the_file(tmp_path):
    empty = write(tmp_path / "empty.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(BadValue, match=r"the mask .*empty.png is empty \(all zero\)"):
        read_mask(empty)
    assert read_mask(empty, allow_empty=True).sum() == 0
    with pytest.raises(BadValue, match="empty"):
        read_mask(torch.zeros(1, 1, 8, 8))
    dot = np.zeros((64, 64), np.uint8)
    dot[10, 10] = 255
    with pytest.warns(UserWarning), pytest.raises(BadValue, match="at the image's size 8x8"):
        read_mask(write(tmp_path / "dot.png", dot), size=(8, 8), mode="binary")  # nothing left once resized


def test_bad_masks_are_one_line_errors(tmp_path):
    with pytest.raises(BadImage, match=r"in \[0, 1\].*divide an 8-bit mask by 255"):
        read_mask(torch.full((4, 4), 255.0))
    with pytest.raises(BadImage, match=r"\(H, W\)"):
        read_mask(torch.ones(2, 2, 4, 4))
    with pytest.raises(BadValue, match="soft, binary"):
        read_mask(torch.ones(4, 4), mode="hard")
    with pytest.raises(BadImage, match="not found"):
        read_mask(tmp_path / "missing.png")
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(BadImage, match="cannot read"):
        read_mask(tmp_path / "notes.png")


def test_tensor_masks_keep_their_values():
    m = torch.rand(1, 3, 5, 7)
    assert torch.allclose(read_mask(m), m.mean(1)[0])
    assert torch.equal(read_mask(m, mode="binary"), (m.amax(1)[0] > 0.5).float())
    assert torch.equal(read_mask(torch.from_numpy(region())), torch.from_numpy(region()).float())


def test_the_callers_share_the_rules(tmp_path):
    box = region()
    zero_one = write(tmp_path / "cat.png", box.astype(np.uint8))
    expected = torch.from_numpy(box).float()
    # faststyle: the 0/1 file selects the box (it used to read as almost black)
    (style,) = style_masks([zero_one], 1, (24, 32))
    assert style.shape == (1, 1, 24, 32) and torch.equal(style[0, 0], expected)
    # evaluate --masks: at the image's size, booleans, the note for another size
    folder = tmp_path / "masks"
    folder.mkdir()
    write(folder / "cat.png", box.astype(np.uint8))
    with pytest.warns(UserWarning, match=r"\(32x24\) is resized to the image's size \(32x32\)"):
        found = evaluation_masks(folder, {"cat.jpg": torch.rand(1, 3, 32, 32)})
    assert found["cat.jpg"].shape == (1, 1, 32, 32) and found["cat.jpg"].dtype == torch.bool
    write(folder / "cat.png", np.zeros((24, 32), np.uint8))
    with pytest.raises(BadValue, match="cat.png is empty"):
        evaluation_masks(folder, {"cat.jpg": torch.rand(1, 3, 24, 32)})
    with pytest.raises(BadValue, match="empty"):
        style_masks([folder / "cat.png"], 1, (24, 32))
    # targets: a 0/1 file gives the same score as the tensor
    seg = torch.rand(2, 3, 24, 32)
    assert torch.allclose(T.in_mask(1, zero_one)(seg), T.in_mask(1, expected)(seg))
    with pytest.raises(BadValue, match="empty"):
        T.in_mask(1, folder / "cat.png")
