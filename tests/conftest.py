"""Shared fixtures: the real embedded model, real photos from scikit-image, and a tiny model
for tests whose point is mechanics."""

from __future__ import annotations

import os

import pytest
import torch

from synthviz.io import resize, to_tensor
from synthviz.models import load_model
from tiny import make_tiny_model

# The suite runs on pytest-xdist workers (pyproject's addopts), which share the cores: 2 torch
# threads each at most, fewer where the workers would oversubscribe the cores.
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
torch.set_num_threads(max(1, min(2, (os.cpu_count() or 2) // WORKERS)))


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: one worker per core, at most 4 (each holds torch, the models and a Chromium)."""
    return max(1, min(4, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def embedded():
    """The embedded EfficientNet-Lite0 with its real ImageNet weights, on the CPU."""
    return load_model("efficientnet_lite0", device="cpu")


@pytest.fixture
def tiny():
    return make_tiny_model()


def _skimage(name: str) -> torch.Tensor:
    import skimage.data

    return to_tensor(getattr(skimage.data, name)(), source=name)


@pytest.fixture(scope="session")
def chelsea() -> torch.Tensor:
    """scikit-image's cat photo (class 285 'Egyptian cat'), (1, 3, 300, 451) in [0, 1]."""
    return _skimage("chelsea")


@pytest.fixture(scope="session")
def chelsea128(chelsea) -> torch.Tensor:
    return resize(chelsea, (128, 128))


@pytest.fixture(scope="session")
def skimage_image():
    """``skimage_image("brick")`` -> (1, 3, H, W) in [0, 1] (greyscale ones converted to RGB)."""
    import warnings

    def load(name: str) -> torch.Tensor:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _skimage(name)

    return load


@pytest.fixture(scope="session")
def cat_png(tmp_path_factory, chelsea):
    """The chelsea photo as a PNG file (one definition for every test module)."""
    import imageio.v3 as iio

    from synthviz.io import to_uint8

    path = tmp_path_factory.mktemp("photos") / "cat.png"
    iio.imwrite(path, to_uint8(chelsea))
    return path
