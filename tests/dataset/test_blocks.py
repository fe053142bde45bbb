"""Building blocks on a photo made of two planted patterns (stripes on the left half, a checkerboard
on the right): two NMF groups split the halves, the groups' attributions are the gradient × activation
of their parts (computed here from the maps and directions), and the command writes OUT.png and OUT.html."""

from __future__ import annotations

import numpy as np
import torch

from clihelp import one_line_error
from clihelp import run as cli
from synthviz.dataset.blocks import activations_and_gradient, factorize, group_attribution
from synthviz.evaluation.planted import planted_images
from synthviz.io import save_image

LAYER = "_blocks.5"


def two_halves() -> torch.Tensor:
    images, _, _ = planted_images(per_pattern=1, size=128, patterns=("stripes", "checkerboard"), fill=True)
    return torch.cat([images[0, :, :, :64], images[1, :, :, 64:]], 2)[None]  # (1, 3, 128, 128)


def test_groups_split_the_halves_and_attribute_their_parts(embedded):
    photo = two_halves()
    act, grad, k = activations_and_gradient(embedded, photo, LAYER, None)
    assert act.shape == grad.shape and act.shape[1:] == (8, 8)
    maps, directions = factorize(act, 2)
    w = act.shape[-1]
    left = maps[:, :, : w // 2].sum((1, 2)) / maps.sum((1, 2))
    assert sorted(np.round(left).tolist()) == [0.0, 1.0] and (np.abs(left - 0.5) > 0.35).all(), left
    attribution = group_attribution(maps, directions, grad)
    part = [(torch.from_numpy(np.outer(directions[i], maps[i].reshape(-1))) * grad.reshape(len(grad), -1)).sum()
            for i in range(2)]
    np.testing.assert_allclose(attribution, [float(p) for p in part], rtol=1e-4, atol=1e-5)
    # together the groups attribute about what the clipped activation does (NMF reconstructs it)
    whole = float((act.clamp_min(0) * grad).sum())
    assert abs(attribution.sum() - whole) < 0.35 * abs(whole) + 1e-3


def test_blocks_command(tmp_path):
    save_image(two_halves()[0], tmp_path / "halves.png")
    out = tmp_path / "bl"
    result = cli("blocks", tmp_path / "halves.png", "--layer", LAYER, "--groups", 2, "--size", 32, "--steps", 1,
                 "--image-size", 64, "--out", out)
    assert result.exit_code == 0, result.output
    page = (tmp_path / "bl.html").read_text()
    assert (tmp_path / "bl.png").exists() and "Neuron groups" in page and "Semantic dictionary" in page
    assert page.count('class="pos"') == 16  # a 4 x 4 grid of positions at 64 px
    one_line_error(cli("blocks", tmp_path / "halves.png", "--out", out), "exists", "--overwrite")
