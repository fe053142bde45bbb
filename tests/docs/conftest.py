"""Fixtures of the documentation tests: a folder holding the photos the examples name, and running
a page's Python blocks as a reader would (in order, one namespace)."""

from __future__ import annotations

import pytest

from docexamples import PHOTOS, python_blocks


@pytest.fixture
def photo_folder(tmp_path, monkeypatch):
    """A fresh working folder holding every photo the examples name (256 px scikit-image photos)."""
    from synthviz.io import resize, save_image
    from synthviz.presets import skimage_image

    monkeypatch.chdir(tmp_path)
    for name, photo in PHOTOS.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        save_image(resize(skimage_image(photo), 256), name)
    return tmp_path


@pytest.fixture
def run_blocks():
    """``run(text, where)`` executes the Python blocks of ``text`` in order in one namespace and
    returns it; an error names the block. The plugins an example registers (the "how to add"
    recipes) are removed again afterwards."""
    import synthviz
    from synthviz.attribution.registry import METHODS
    from synthviz.models import MODELS
    from synthviz.objectives import OBJECTIVES

    registries = [synthviz.TECHNIQUES, OBJECTIVES, METHODS, MODELS]
    saved = [dict(r._items) for r in registries]

    def run(text: str, where: str) -> dict:
        namespace: dict = {}
        for i, block in enumerate(python_blocks(text)):
            try:
                exec(compile(block, f"{where} python block {i + 1}", "exec"), namespace)  # noqa: S102 - our docs
            except Exception as e:  # name the block that broke
                raise AssertionError(f"{where} python block {i + 1} failed: {type(e).__name__}: {e}\n{block}") from e
        return namespace

    run.saved_techniques = set(saved[0])
    try:
        yield run
    finally:
        for registry, items in zip(registries, saved):
            registry._items = items
