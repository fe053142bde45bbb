"""The size rule every image read for a model obeys (issue 26): the image, and the image at --size,
at least the model's minimum on the shorter side; readers skip and list the others, or refuse one
given alone, naming the file, its shape (width x height) and the fix."""

from __future__ import annotations

import pytest
import torch

from synthviz.errors import BadImage
from synthviz.io import as_image, load_image, read_all, resize, save_image, scaled_shape, size_problem


@pytest.mark.parametrize("h, w, size, fix", [(1, 1, 64, "at least 32x32 px"), (10, 20000, 64, "at least 32x32 px"),
                                            (40, 20000, 64, "crop it"), (40, 100, 64, "--size 79 or more")])
def test_size_problem_names_the_shape_and_the_fix(h, w, size, fix):
    reason, how = size_problem(h, w, size, 32)
    assert f"{w}x{h} px" in reason and fix in how
    assert size_problem(h, w, size, 1) is None or min(h, w) < 1


def test_the_suggested_size_is_the_smallest_that_works():
    # independently: resize a 40 x 100 image at the suggested side and one px less
    image = torch.rand(1, 3, 40, 100)
    need = int(size_problem(40, 100, 64, 32)[1].split("--size ")[1].split()[0])
    assert min(resize(image, need).shape[-2:]) >= 32 > min(resize(image, need - 1).shape[-2:])
    assert size_problem(40, 100, need, 32) is None
    assert scaled_shape(40, 100, need) == tuple(resize(image, need).shape[-2:])


def test_readers_skip_and_refuse_images_too_small_for_the_model(tmp_path, chelsea):
    save_image(resize(chelsea, 64), tmp_path / "cat.png")
    save_image(torch.rand(3, 1, 1), tmp_path / "dot.png")
    save_image(torch.rand(3, 40, 2000), tmp_path / "strip.png")
    loaded, skipped = read_all(sorted(tmp_path.iterdir()), 64, min_side=32)
    assert [p.name for p, _ in loaded] == ["cat.png"]
    assert dict((p.name, why) for p, why in skipped) == {
        "dot.png": "1x1 px, smaller than the 32 px the model needs on the shorter side",
        "strip.png": "2000x40 px: at --size 64 its shorter side is 1 px, below the 32 px the model needs"}
    with pytest.raises(BadImage, match=r"dot.png: 1x1 px.*use an image at least 32x32 px"):
        load_image(tmp_path / "dot.png", 64, min_side=32)
    with pytest.raises(BadImage, match=r"^image: 2000x40 px.*use --size 1575 or more"):
        as_image(torch.rand(1, 3, 40, 2000), 64, min_side=32)
    assert as_image(tmp_path / "strip.png", 64).shape[-2:] == (1, 64)  # no model minimum: no rule
