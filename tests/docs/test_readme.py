"""The README's Python examples run as written (in order, one namespace, in a folder holding the
photos they name), and its inline one-line calls name real functions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import synthviz
from synthviz.attribution.registry import METHODS
from synthviz.io import resize, save_image
from synthviz.objectives import OBJECTIVES
from synthviz.presets import skimage_image

README = Path(__file__).resolve().parents[2] / "README.md"
PHOTOS = {"cat.png": "chelsea", "cat.jpg": "chelsea", "brick.png": "brick", "a.png": "grass", "b.png": "gravel", "photo.png": "coffee",
          "photos/cat.jpg": "chelsea", "photos/coffee.jpg": "coffee", "photos/astronaut.jpg": "astronaut",
          "photos/rocket.jpg": "rocket", "photos/coins.png": "coins", "photos/camera.png": "camera",
          "my_photos/chelsea.png": "chelsea", "my_photos/coffee.png": "coffee", "my_photos/rocket.png": "rocket"}


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_examples():
    assert len(python_blocks()) >= 3


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_readme_python_examples_run_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name, photo in PHOTOS.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        save_image(resize(skimage_image(photo), 256), name)
    namespace: dict = {}
    registries = [synthviz.TECHNIQUES, OBJECTIVES, METHODS]
    saved = [dict(r._items) for r in registries]  # the "how to add" examples register plugins
    try:
        for i, block in enumerate(python_blocks()):
            try:
                exec(compile(block, f"README.md python block {i + 1}", "exec"), namespace)  # noqa: S102 - our README
            except Exception as e:  # name the block that broke
                raise AssertionError(f"README python block {i + 1} failed: {type(e).__name__}: {e}\n{block}") from e
        added = set(synthviz.TECHNIQUES.names()) - set(saved[0])
        assert added == {"negative_class"}  # the architecture section's example registered itself
        assert isinstance(synthviz.negative_class(target=2, size=64, steps=2), synthviz.Result)
    finally:
        for registry, items in zip(registries, saved):
            registry._items = items
    assert (tmp_path / "classviz.png").exists() and (tmp_path / "classviz.json").exists()


def test_inline_python_calls_in_the_readme_name_real_functions():
    calls = set(re.findall(r"`synthviz\.([a-z_]+(?:\.[a-z_]+)*)\(", README.read_text()))
    assert calls, "no inline calls found"
    for dotted in calls:
        obj = synthviz
        for part in dotted.split("."):
            obj = getattr(obj, part)
        assert callable(obj), dotted


def test_every_gallery_file_the_readme_shows_exists():
    paths = set(re.findall(r"\]\((gallery/[^)\s]+)\)", README.read_text()))
    assert paths, "the README shows no gallery image"
    missing = sorted(p for p in paths if not (README.parent / p).is_file())
    assert not missing, f"the README shows gallery files that are not there (rebuilt gallery?): {missing}"
