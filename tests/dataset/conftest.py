"""Fixtures of the whole-layer tests (test_atlas*.py): planted patterns that fill the frame and their
index with activation samples, made once per session."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import torch

from synthviz.dataset import index
from synthviz.evaluation.planted import write_planted

ATLAS_LAYER, ATLAS_SIZE, ATLAS_SAMPLES = "_blocks.5", 64, 4


@pytest.fixture(scope="session")
def planted_set(tmp_path_factory) -> Path:
    """10 images of each pattern at 64 px (images/: an ImageFolder with labels.csv; masks/ beside it)."""
    return write_planted(tmp_path_factory.mktemp("planted") / "planted", per_pattern=10, size=ATLAS_SIZE, fill=True)


@pytest.fixture(scope="session")
def planted_run(planted_set, embedded, tmp_path_factory) -> Path:
    """Their index at ``_blocks.5`` of the embedded model with 4 activation samples per image."""
    out = tmp_path_factory.mktemp("run") / "run"
    with two_threads():
        return index(planted_set / "images" / "labels.csv", out, model=embedded, layers=ATLAS_LAYER, size=ATLAS_SIZE,
                     top_k=8, batch_size=12, workers=0, progress=False, samples_per_image=ATLAS_SAMPLES)


@contextlib.contextmanager
def two_threads():
    """2 torch threads inside, the count as it was after. The atlas tests' t-SNE layout (seed 0) moves
    with the activations' last bits, which move with the thread count: their thresholds were measured
    on activations computed with 2 threads, and a re-run compared byte for byte needs the same count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def same_threads_as_the_planted_run():
    with two_threads():
        yield
