"""The indexing pass on a local Ray cluster (2 CPUs) gives the same files as a local pass."""

from __future__ import annotations

import sys

import pytest

from synthviz.dataset import index
from test_dataset import LAYERS, SIZE, K, make_dataset


def test_a_local_ray_cluster_gives_the_same_files(embedded, tmp_path):
    ray = pytest.importorskip("ray")
    import torch

    data = make_dataset(tmp_path / "photos")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' thread count: the same arithmetic, the same bits
    try:
        local = index(data, tmp_path / "local", model=embedded, layers=LAYERS, size=SIZE, top_k=K, batch_size=5,
                      workers=0, progress=False)
    finally:
        torch.set_num_threads(threads)
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    except Exception as e:  # noqa: BLE001 - no Ray here (sandbox, ports): nothing to test
        pytest.skip(f"a local Ray cluster could not start: {e}")
    try:
        remote = index(data, tmp_path / "ray", model=embedded, layers=LAYERS, size=SIZE, top_k=K, batch_size=5,
                       ray="auto", progress=False)
        assert ray.is_initialized()  # the session started here is used as it is, and left running
    finally:
        ray.shutdown()
    for rel in ["topk.csv", "bottomk.csv", "units.csv", "skipped.txt", "state.npz", "features/_blocks.1.npy",
                "features/_blocks.3.npy"]:
        assert (local / rel).read_bytes() == (remote / rel).read_bytes(), rel


def test_ray_option_without_ray_says_how_to_install(embedded, tmp_path, monkeypatch):
    from synthviz.errors import SynthvizError

    monkeypatch.setitem(sys.modules, "ray", None)
    data = make_dataset(tmp_path / "photos")
    with pytest.raises(SynthvizError, match=r'pip install "synthviz\[ray\]"'):
        index(data, tmp_path / "r", model=embedded, layers="_blocks.1", size=SIZE, ray="auto", progress=False)
