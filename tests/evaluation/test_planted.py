"""The planted-pattern generator: each pattern where its mask says, masks that read back as class ids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from synthviz.evaluation.planted import PATTERNS, planted_images, write_planted
from synthviz.io import read_mask


def test_patterns_are_where_their_masks_say():
    images, labels, masks = planted_images(per_pattern=3, size=32, seed=1)
    assert images.shape == (12, 3, 32, 32) and labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    disk = images[3:6]  # the red disk: red over its mask, with almost no green or blue
    inside = masks[3:6].bool().expand_as(disk)
    assert disk[:, 0][inside[:, 0]].min() > 0.8 and disk[:, 1][inside[:, 1]].max() < 0.2
    stripes = images[0][:, masks[0, 0].bool()].view(3, 16, 16)  # a 2 px period along one axis only
    rows, cols = stripes.diff(dim=1).abs().mean(), stripes.diff(dim=2).abs().mean()
    assert min(rows, cols) < 1e-6 < max(rows, cols)
    assert masks[9:].sum() == 0  # noise: nothing planted
    full = planted_images(per_pattern=1, size=32, fill=True, patterns=("checkerboard",))[2]
    assert full.min() == 1


def test_counts_per_pattern():
    images, labels, masks = planted_images((1, 2, 0, 3), 16, fill=True)
    assert images.shape == (6, 3, 16, 16) and labels.tolist() == [0, 1, 1, 3, 3, 3]
    assert masks[0].min() == 1 and masks[3:].sum() == 0
    same = planted_images(2, 16, seed=3)  # an int is that count for every pattern
    torch.testing.assert_close(same[0], planted_images((2, 2, 2, 2), 16, seed=3)[0])


def test_written_masks_read_back_as_class_ids(tmp_path):
    from synthviz.dataset.sources import find_images

    folder = write_planted(tmp_path / "planted", per_pattern=2, size=32)
    lines = (folder / "images" / "labels.csv").read_text().splitlines()
    assert lines[0] == "path,label" and len(lines) == 1 + 2 * len(PATTERNS)
    path, pattern = lines[3].split(",")
    assert pattern == "red disk" and (folder / "images" / path).exists()
    ids = np.unique(np.asarray(__import__("imageio").v3.imread(folder / "masks" / path)))
    assert set(ids.tolist()) == {0, PATTERNS.index("red disk") + 1}
    assert read_mask(folder / "masks" / path).shape[-2:] == torch.Size([32, 32])
    # the masks are beside the image folder, not in it: indexing the folder finds the images only,
    # with their pattern as the ImageFolder label
    found = find_images(folder / "images")
    assert len(found) == 2 * len(PATTERNS) and all(Path(p).parent.parent == folder / "images" for p in found.paths)
    assert sorted(set(found.labels)) == sorted(p.replace(" ", "_") for p in PATTERNS)
    assert find_images(folder / "images" / "labels.csv").labels == [p for p in PATTERNS for _ in range(2)]
