"""The indexing pass on Ray Data with a local Ray cluster (2 CPUs) gives the same files as a local
pass, also when interrupted and resumed, RelMax (`--relevance`) included: the workers compute it in the
same pass; results that arrive out of order are merged in order."""

from __future__ import annotations

import random
import sys

import pytest

from synthviz.dataset import index
from test_dataset import LAYERS, SIZE, K, make_dataset

pytestmark = pytest.mark.xdist_group("ray")  # one worker runs the Ray clusters, one after another

FILES = ["topk.csv", "bottomk.csv", "units.csv", "skipped.txt", "state.npz", "images.csv",
         "features/_blocks.1.npy", "features/_blocks.3.npy",
         "relmax.csv", "features/_blocks.1#relevance.npy", "features/_blocks.3#relevance.npy"]
RELEVANCE = 1  # RelMax for class 1 (goldfish) too, in the same pass


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_ray_data_gives_the_same_files_as_a_local_pass_also_after_a_resume(embedded, tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    import torch

    data = make_dataset(tmp_path / "photos")  # 17 files (one unreadable) and a 1x1 icon: batches of 5 -> 4 batches
    import imageio.v3 as iio
    import numpy as np

    iio.imwrite(data / "things" / "icon.png", np.zeros((1, 1, 3), np.uint8))  # below the model's minimum: skipped
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' thread count: the same arithmetic, the same bits
    try:
        local = index(data, tmp_path / "local", model=embedded, layers=LAYERS, size=SIZE, top_k=K, batch_size=5,
                      workers=0, progress=False, relevance=RELEVANCE)
    finally:
        torch.set_num_threads(threads)
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    except Exception as e:  # noqa: BLE001 - no Ray here (sandbox, ports): nothing to test
        pytest.skip(f"a local Ray cluster could not start: {e}")
    calls = []
    map_batches = ray.data.Dataset.map_batches

    def spy(self, fn, **kwargs):  # the pass really runs on Ray Data, one model worker per CPU
        calls.append((fn.__name__, kwargs["batch_size"], kwargs["concurrency"], kwargs["num_cpus"]))
        return map_batches(self, fn, **kwargs)

    monkeypatch.setattr(ray.data.Dataset, "map_batches", spy)

    def stop(done):
        if done == 2:
            raise KeyboardInterrupt

    try:
        with pytest.raises(KeyboardInterrupt):
            index(data, tmp_path / "ray", model=embedded, layers=LAYERS, size=SIZE, top_k=K, batch_size=5,
                  ray="auto", progress=False, on_batch=stop, relevance=RELEVANCE)
        assert (tmp_path / "ray" / "state.npz").exists() and not (tmp_path / "ray" / "topk.csv").exists()
        remote = index(data, tmp_path / "ray", model=embedded, layers=LAYERS, size=SIZE, top_k=K, batch_size=5,
                       ray="auto", progress=False, relevance=RELEVANCE)
        assert ray.is_initialized()  # the session started here is used as it is, and left running
    finally:
        ray.shutdown()
    assert calls == [("BatchForward", 1, 2, 1)] * 2
    assert "broken.png\tnot an image or corrupt" in (remote / "skipped.txt").read_text()
    assert "icon.png\t1x1 px, smaller than the 32 px" in (remote / "skipped.txt").read_text()
    for rel in FILES:
        assert (local / rel).read_bytes() == (remote / rel).read_bytes(), rel
    relmax = (remote / "relmax.csv").read_text().splitlines()
    assert relmax[0] == "layer,unit,rank,path,value,x,y" and len(relmax) > 1  # (not an empty table)


def test_results_that_arrive_out_of_order_are_merged_in_order():
    from synthviz.dataset.distributed import in_order
    from synthviz.errors import SynthvizError

    rows = [{"batch": b, "x": b * 10} for b in range(3, 12)]
    shuffled = rows[:]
    random.Random(0).shuffle(shuffled)
    assert [r["batch"] for r in in_order(iter(shuffled), 3)] == list(range(3, 12))
    with pytest.raises(SynthvizError, match="lost batch 5"):
        list(in_order(iter(rows[:2] + rows[3:]), 3))


def test_ray_option_without_ray_says_how_to_install(embedded, tmp_path, monkeypatch):
    from synthviz.errors import SynthvizError

    monkeypatch.setitem(sys.modules, "ray", None)
    data = make_dataset(tmp_path / "photos")
    with pytest.raises(SynthvizError, match=r'pip install "synthviz\[ray\]"'):
        index(data, tmp_path / "r", model=embedded, layers="_blocks.1", size=SIZE, ray="auto", progress=False)
