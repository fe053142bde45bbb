"""The one Ray start-up (synthviz.cluster): the one-line error naming the ``ray`` extra when Ray
is missing, a failed connection named with its fix, and a session shut down only when it was
started here. The real Ray is exercised by tests/gallery and tests/dataset/test_dataset_ray.py;
here a stand-in ``ray`` module records what start-up asks of it."""

from __future__ import annotations

import sys
import types

import pytest

from synthviz.cluster import import_ray, ray_session, start_ray
from synthviz.errors import SynthvizError


@pytest.mark.parametrize("data,what", [(False, "Ray"), (True, "Ray Data")])
def test_missing_ray_names_the_extra(monkeypatch, data, what):
    monkeypatch.setitem(sys.modules, "ray", None)
    expected = f'--ray needs {what}, an optional extra: pip install "synthviz[ray]"'
    with pytest.raises(SynthvizError) as err:
        start_ray("auto", data=data)
    assert str(err.value) == expected
    with pytest.raises(SynthvizError, match="synthviz\\[ray\\]"):
        import_ray(data)


def fake_ray(monkeypatch, running: bool = False, fails: Exception | None = None) -> types.ModuleType:
    ray = types.ModuleType("ray")
    ray.calls = []
    ray.is_initialized = lambda: running

    def init(**kwargs):
        ray.calls.append(("init", kwargs))
        if fails is not None:
            raise fails

    ray.init = init
    ray.shutdown = lambda: ray.calls.append(("shutdown", {}))
    monkeypatch.setitem(sys.modules, "ray", ray)
    return ray


def test_a_session_started_here_is_shut_down_and_num_cpus_only_limits_a_local_ray(monkeypatch):
    ray = fake_ray(monkeypatch)
    with ray_session("local", num_cpus=3) as got:
        assert got is ray
    assert [c for c, _ in ray.calls] == ["init", "shutdown"]
    assert ray.calls[0][1]["address"] is None and ray.calls[0][1]["num_cpus"] == 3
    ray.calls.clear()
    assert start_ray("ray://head:10001", num_cpus=3) is True  # a cluster's size is the cluster's
    assert ray.calls == [("init", {"address": "ray://head:10001", "include_dashboard": False, "log_to_driver": False})]


def test_a_running_session_is_used_as_it_is(monkeypatch):
    ray = fake_ray(monkeypatch, running=True)
    with ray_session("auto"):
        pass
    assert start_ray("auto") is False and ray.calls == []


def test_a_failed_connection_is_one_line_naming_the_fix(monkeypatch):
    fake_ray(monkeypatch, fails=ConnectionError("Could not find any running Ray instance.\nPlease specify..."))
    with pytest.raises(SynthvizError) as err:
        start_ray("auto")
    assert str(err.value) == ("cannot connect to Ray at 'auto' (Could not find any running Ray instance.); "
                              "start a cluster with `ray start --head`, or use --ray local")
