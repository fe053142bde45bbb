"""`synthviz concepts --ray local`: every pass (activations, encoding, Sobol indices) runs on Ray Data
through the dataset pass's `ray_map` (one Ray start-up), and the dictionary's inputs (every position's
activation), the dictionary and the outputs (importance.csv: the Sobol indices) equal a local pass's, a
corrupt file skipped the same way."""

from __future__ import annotations

import pytest
import torch

from synthviz.concepts import learn
from synthviz.evaluation.planted import planted_images
from synthviz.io import save_image

pytestmark = pytest.mark.xdist_group("ray")  # one worker runs the Ray clusters, one after another


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_ray_local_gives_the_local_pass_activations_and_dictionary(embedded, tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    for i, image in enumerate(planted_images(2, 64)[0][:7]):  # 7 images + a corrupt one: batches of 3 -> 3 batches
        save_image(image, tmp_path / "data" / f"{i:02d}.png")
    (tmp_path / "data" / "03-broken.png").write_bytes(b"not a png")
    kwargs = dict(model=embedded, layer="_blocks.3", method="nmf", concepts=3, size=64, batch_size=3, progress=False,
                  pages=False, keep_activations=True, sobol_images=1)  # NMF: a Sobol pass too, one image per class
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' thread count: the same arithmetic, the same bits
    try:
        local = learn(tmp_path / "data", tmp_path / "local", workers=0, **kwargs)
    finally:
        torch.set_num_threads(threads)
    calls, inits = [], []
    map_batches, init = ray.data.Dataset.map_batches, ray.init

    def spy(self, fn, **kw):  # the passes really run on Ray Data
        calls.append(fn.__name__)
        return map_batches(self, fn, **kw)

    def count(*args, **kw):  # one CPU: one model worker per pass, the cheapest Ray there is
        inits.append(kw.get("address"))
        return init(*args, **{**kw, "num_cpus": 1})

    monkeypatch.setattr(ray.data.Dataset, "map_batches", spy)
    monkeypatch.setattr(ray, "init", count)
    try:
        remote = learn(tmp_path / "data", tmp_path / "ray", ray="local", **kwargs)
        assert not ray.is_initialized()  # the session it started is shut down
    except Exception as e:  # noqa: BLE001 - no Ray here (sandbox, ports): nothing to test
        if "cannot connect to Ray" in str(e):
            pytest.skip(f"a local Ray cluster could not start: {e}")
        raise
    finally:
        if ray.is_initialized():
            ray.shutdown()
    assert calls == ["ActivationRows", "EncodeRows", "SobolRows"] and inits == [None]  # one start-up, every pass
    assert (local / "collect-activations.npy").read_bytes() == (remote / "collect-activations.npy").read_bytes()
    for name in ("concepts.csv", "importance.csv", "skipped.txt", "images.csv"):
        assert (local / name).read_text() == (remote / name).read_text(), name
    assert "03-broken.png" in (remote / "skipped.txt").read_text()
    d = [torch.load(run / "dictionary.pt", weights_only=True) for run in (local, remote)]
    assert torch.equal(d[0]["dictionary"], d[1]["dictionary"])
