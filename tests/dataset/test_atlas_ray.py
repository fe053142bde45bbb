"""The activation samples and the atlas's icons on a local Ray cluster (2 CPUs): the samples are the
same bytes as a local pass's, the icons the same renders to float rounding."""

from __future__ import annotations

import pytest
import torch

from synthviz.dataset import index
from synthviz.dataset.atlas import render_icons
from synthviz.evaluation.planted import write_planted

pytestmark = pytest.mark.xdist_group("ray")  # one worker runs the Ray clusters, one after another


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_samples_and_icons_on_ray(embedded, tmp_path):
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    planted = write_planted(tmp_path / "planted", per_pattern=2, size=64, fill=True)
    options = dict(model=embedded, layers="_blocks.5", size=64, top_k=4, batch_size=4, workers=0, progress=False,
                   samples_per_image=2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' thread count: the same arithmetic, the same bits
    try:
        local = index(planted / "images" / "labels.csv", tmp_path / "local", **options)
        icons = render_icons(embedded, "_blocks.5", torch.rand(3, 80).numpy(), size=32, steps=2, batch=2)
    finally:
        torch.set_num_threads(threads)
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    except Exception as e:  # noqa: BLE001 - no Ray here (sandbox, ports): nothing to test
        pytest.skip(f"a local Ray cluster could not start: {e}")
    try:
        remote = index(planted / "images" / "labels.csv", tmp_path / "ray", ray="auto", **options)
        for f in sorted((local / "samples").iterdir()):
            assert f.read_bytes() == (remote / "samples" / f.name).read_bytes(), f.name
        torch.manual_seed(0)
        same = render_icons(embedded, "_blocks.5", torch.rand(3, 80).numpy(), size=32, steps=2, batch=2, ray="auto")
        torch.manual_seed(0)
        torch.testing.assert_close(same, render_icons(embedded, "_blocks.5", torch.rand(3, 80).numpy(), size=32,
                                                      steps=2, batch=2), atol=1e-5, rtol=0)
        assert same.shape == icons.shape
    finally:
        ray.shutdown()
