"""One folder lister and one list reader (issue 25): the same suffix rules, sort order and handling
of corrupt and non-image files everywhere a folder of images is read."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from synthviz.dataset.sources import find_images
from synthviz.errors import BadImage, SynthvizError
from synthviz.evaluation.inputs import image_files, load_images
from synthviz.faststyle.stylize import folder_images
from synthviz.faststyle.train import ContentCrops
from synthviz.io import glob_files, list_images, load_image, read_all, read_images, save_image, skipped_note
from synthviz.maco import amplitude_spectrum
from synthviz.techniques.saliency_folder import photos_in


@pytest.fixture
def folder(tmp_path):
    """a.png, B.JPG (upper-case suffix), broken.png (text), notes.txt, a folder named d.png, sub/c.png."""
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    (root / "d.png").mkdir()
    torch.manual_seed(0)
    save_image(torch.rand(3, 20, 30), root / "a.png")
    Image.fromarray((np.random.default_rng(1).random((24, 24, 3)) * 255).astype(np.uint8)).save(root / "B.JPG")
    (root / "broken.png").write_text("not an image")
    (root / "notes.txt").write_text("notes")
    save_image(torch.rand(3, 16, 16), root / "sub" / "c.png")
    return root


def names(paths, root: Path) -> list[str]:
    return [Path(p).relative_to(root).as_posix() for p in paths]


def test_list_images_files_by_suffix_sorted(folder):
    assert names(list_images(folder), folder) == ["B.JPG", "a.png", "broken.png"]
    assert names(list_images(folder, recursive=True), folder) == ["B.JPG", "a.png", "broken.png", "sub/c.png"]
    empty = folder / "empty"
    empty.mkdir()
    assert list_images(empty, allow_empty=True) == []
    with pytest.raises(BadImage, match="no images found in .*empty; put PNG or JPEG files there"):
        list_images(empty)
    with pytest.raises(BadImage, match="not found"):
        list_images(folder / "nowhere")
    with pytest.raises(BadImage, match="is a file, not a folder"):
        list_images(folder / "a.png")
    assert [Path(p).name for p in glob_files(str(folder / "**" / "*.png"))] == ["a.png", "broken.png", "c.png"]


def test_every_lister_is_the_io_one(folder):
    flat, deep = list_images(folder), list_images(folder, recursive=True)
    assert image_files(folder) == flat and folder_images(folder) == flat and photos_in(folder) == flat
    assert ContentCrops(folder, 8).files == deep
    assert find_images(folder).paths == [str(p) for p in deep]


def test_read_images_skips_and_lists_what_cannot_be_read(folder):
    skipped = []
    paths = [folder / "a.png", folder / "broken.png", folder / "missing.png", folder / "B.JPG"]
    read = list(read_images(paths, skipped=skipped))
    assert [p.name for p, _ in read] == ["a.png", "B.JPG"]
    peer = torch.from_numpy(np.asarray(Image.open(folder / "B.JPG").convert("RGB"), np.float32) / 255)
    assert torch.allclose(read[1][1][0], peer.permute(2, 0, 1), atol=1e-6)  # the pixels PIL reads
    assert skipped == [(folder / "broken.png", "not an image or corrupt"), (folder / "missing.png", "not found")]
    assert skipped_note(skipped) == ("skipped 2 unreadable file(s): broken.png (not an image or corrupt), "
                                     "missing.png (not found)")
    assert skipped_note(skipped * 4, limit=2).endswith("and 6 more")


def test_read_all_errors(folder):
    with pytest.raises(BadImage, match="cannot read .*broken.png as an image"):
        read_all([folder / "broken.png"])                                  # one file alone: its own error
    with pytest.raises(BadImage, match=r"no image in photos could be read: skipped 2 .*broken.png"):
        read_all([folder / "broken.png", folder / "nope.png"], where="photos")
    loaded, skipped = read_all(list_images(folder), size=12)
    assert [p.name for p, _ in loaded] == ["B.JPG", "a.png"] and max(loaded[1][1].shape[-2:]) == 12
    assert [p.name for p, _ in skipped] == ["broken.png"]


def test_the_folder_readers_skip_corrupt_files_with_a_note(folder):
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable file\(s\): broken.png \(not an image or corrupt\)"):
        images = load_images(folder)
    assert sorted(images) == ["B.JPG", "a.png"]
    with pytest.warns(UserWarning, match="broken.png"):
        spectrum = amplitude_spectrum(folder, size=16)
    good = [load_image(folder / "a.png"), load_image(folder / "B.JPG")]
    assert torch.allclose(spectrum, amplitude_spectrum(good, size=16))
    crops = ContentCrops(folder, 8)
    with pytest.warns(UserWarning, match="broken.png skipped: not an image or corrupt"):
        samples = crops.fixed(3)
    assert samples.shape == (3, 3, 8, 8) and crops.skipped == [(folder / "broken.png", "not an image or corrupt")]
    assert [p.name for p in crops.files] == ["B.JPG", "a.png", "c.png"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert crops.batch(4).shape == (4, 3, 8, 8)


def test_a_folder_of_only_unreadable_files_is_an_error(tmp_path):
    (tmp_path / "x.png").write_text("x")
    (tmp_path / "y.jpg").write_text("y")
    with pytest.raises(SynthvizError, match="could be read"):
        load_images(tmp_path)
    crops = ContentCrops(tmp_path, 8)
    with pytest.warns(UserWarning), pytest.raises(SynthvizError, match="no image in .* could be read"):
        crops.batch(1)
