"""16-bit output (issue 30): PNG and TIFF written by ``save_image(..., bit_depth=16)`` read back
at 16 bits by other libraries (OpenCV for the PNG, tifffile through imageio for the TIFF)."""

import numpy as np
import pytest
import torch

from synthviz.errors import SynthvizError
from synthviz.io import save_image


def _ramp() -> torch.Tensor:
    # a smooth ramp: 8 bits would keep only 256 of its levels
    h, w = 6, 300
    x = torch.linspace(0, 1, w).expand(h, w)
    return torch.stack([x, x.flip(-1), torch.full((h, w), 0.3)])[None]


def test_png_16_bits_reads_back_at_16_bits(tmp_path):
    cv2 = pytest.importorskip("cv2")
    image = _ramp()
    path = save_image(image, tmp_path / "out.png", bit_depth=16)
    back = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[..., ::-1]  # BGR -> RGB
    assert back.dtype == np.uint16 and back.shape == (6, 300, 3)
    expected = (image[0].permute(1, 2, 0).double().numpy() * 65535).round()
    assert np.abs(back - expected).max() <= 0.5
    assert len(np.unique(back[..., 0])) == 300  # more levels than 8 bits hold


def test_tiff_16_bits_reads_back_at_16_bits(tmp_path):
    pytest.importorskip("tifffile")
    import tifffile

    image = _ramp()
    path = save_image(image, tmp_path / "out.tif", bit_depth=16)
    back = tifffile.imread(path)
    assert back.dtype == np.uint16
    np.testing.assert_allclose(back / 65535, image[0].permute(1, 2, 0).numpy(), atol=1e-5)


def test_16_bits_refuses_jpeg_and_odd_depths(tmp_path):
    with pytest.raises(SynthvizError, match="16 bits"):
        save_image(_ramp(), tmp_path / "out.jpg", bit_depth=16)
    with pytest.raises(SynthvizError, match="use 8 or 16"):
        save_image(_ramp(), tmp_path / "out.png", bit_depth=12)
    assert not list(tmp_path.iterdir())


def test_texture_command_writes_16_bits(tmp_path, skimage_image):
    cv2 = pytest.importorskip("cv2")
    from clihelp import one_line_error, run

    from synthviz.io import resize

    example = tmp_path / "ex.png"
    save_image(resize(skimage_image("coffee"), 96), example)
    out = tmp_path / "tex.png"
    res = run("texture", example, "--size", 32, "--steps", 1, "--scales", 1, "--bit-depth", 16, "--out", out)
    assert res.exit_code == 0, res.output
    back = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16 and back.shape == (32, 32, 3)
    one_line_error(run("texture", example, "--size", 32, "--steps", 1, "--bit-depth", 16, "--out", tmp_path / "t.jpg"),
                   "16 bits")
