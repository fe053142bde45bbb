"""Shared fixtures: the real embedded model, real photos from scikit-image, and a tiny model
for tests whose point is mechanics."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from synthviz.io import resize, to_tensor
from synthviz.models import Model, load_model

torch.set_num_threads(2)


class TinyNet(nn.Module):
    """A small CNN with named stages, for mechanics tests (fast, deterministic)."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(16, 16, 3, stride=2, padding=1)
        self.relu3 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        x = self.relu1(self.conv1(x))
        x = self.relu2(self.conv2(x))
        x = self.relu3(self.conv3(x))
        return self.fc(self.pool(x).flatten(1))


def make_tiny_model(seed: int = 0) -> Model:
    torch.manual_seed(seed)
    return Model(TinyNet(), classes=[f"class {i}" for i in range(10)], name="tiny", min_size=8)


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
