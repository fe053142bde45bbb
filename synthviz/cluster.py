"""The one Ray start-up: everything that runs on Ray (the gallery's items, the dataset index on
Ray Data) gets its session here.

``address`` is ``auto`` (the cluster this machine belongs to, as ``ray start`` left it), ``local``
(a new single-machine Ray inside this process) or a cluster address (``ray://HOST:10001``). A Ray
session already started in this process is used as it is and left running.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from .errors import SynthvizError


def import_ray(data: bool = False):
    """The ``ray`` module (with ``ray.data`` when ``data``), or the one-line error naming the extra."""
    try:
        import ray

        if data:
            import ray.data  # noqa: F401 - needs pandas and pyarrow
    except ImportError:
        what = "Ray Data" if data else "Ray"
        raise SynthvizError(f'--ray needs {what}, an optional extra: pip install "synthviz[ray]"') from None
    return ray


def start_ray(address: str = "auto", num_cpus: int | None = None, *, data: bool = False) -> bool:
    """Connect to Ray at ``address`` (or start it: ``local``) unless this process already has a
    session. ``num_cpus`` limits a ``local`` Ray (a cluster's size is the cluster's). Returns
    whether a session was started here (the caller then shuts it down: see :func:`ray_session`)."""
    ray = import_ray(data)
    if ray.is_initialized():
        return False
    local = address == "local"
    extra = {"num_cpus": num_cpus} if local and num_cpus is not None else {}
    try:
        ray.init(address=None if local else address, include_dashboard=False, log_to_driver=False, **extra)
    except Exception as e:  # noqa: BLE001 - no cluster there, a refused port, a version mismatch
        first = (str(e).splitlines() or [type(e).__name__])[0][:120]
        raise SynthvizError(f"cannot connect to Ray at '{address}' ({first}); start a cluster with "
                            "`ray start --head`, or use --ray local") from None
    return True


@contextlib.contextmanager
def ray_session(address: str = "auto", num_cpus: int | None = None, *, data: bool = False) -> Iterator:
    """``with ray_session(address) as ray:`` the ``ray`` module with a session for the block; a
    session started here is shut down at the end, one that was already running is left as it was."""
    started = start_ray(address, num_cpus, data=data)
    try:
        yield import_ray(data)
    finally:
        if started:
            import_ray().shutdown()
