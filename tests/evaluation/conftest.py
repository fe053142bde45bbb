"""Fixtures of the evaluation tests."""

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Tiny convolutions: a second thread only adds synchronisation (up to 20x slower on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
