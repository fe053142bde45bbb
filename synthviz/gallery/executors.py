"""Where items render: worker processes on this machine or Ray tasks on a cluster."""

from __future__ import annotations

import os
from collections.abc import Iterator

import torch

from ..cluster import ray_session
from .render import _WORKER, render_item
from .spec import Item


def _watch_parent(parent: int, every: float = 0.5) -> None:
    """Exit this worker as soon as ``parent`` is gone (killed with SIGKILL, no cleanup): a worker
    is reparented then, so ``os.getppid()`` changes. Runs in a daemon thread."""
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(1)

    threading.Thread(target=watch, name="synthviz-parent-watchdog", daemon=True).start()


def _init_worker(slots, threads: int, gpus: int, parent: int | None = None) -> None:
    import signal

    # Ctrl-C reaches the whole process group: the parent handles it (saves what finished and
    # stops the workers); a worker interrupted mid-import would only print a traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if parent is not None:
        _watch_parent(parent)
    slot = slots.get()
    torch.set_num_threads(threads)
    _WORKER["device"] = f"cuda:{slot % gpus}" if gpus else "cpu"


def _run_processes(items: list[Item], workers: int, threads: int | None = None) -> Iterator[dict]:
    """Items in ``workers`` processes (spawned: safe with threads and CUDA), one GPU each when present."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = mp.get_context("spawn")
    gpus = torch.cuda.device_count()
    slots = ctx.Queue()
    for i in range(workers):
        slots.put(i)
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(slots, threads, gpus, os.getpid()))
    try:
        futures = {pool.submit(render_item, it.as_dict()): it for it in items}
        for future in as_completed(futures):
            try:
                yield future.result()
            except Exception as e:  # a worker that died (out of memory, segfault): record, go on
                yield _failed(futures[future], f"worker process failed ({type(e).__name__}: {e})")
    finally:  # finished normally, Ctrl-C or an error: no worker outlives the gallery
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for p in processes:
            if p.is_alive():
                p.terminate()
        for p in processes:
            p.join(timeout=5)


def _failed(item: Item, message: str) -> dict:
    return {"id": item.id, "section": item.section, "preset": item.preset, "technique": item.technique,
            "params": item.params, "status": "error", "error": message, "files": {}}


def _ray_task(item: dict, threads: int) -> dict:
    return render_item(item, threads=threads)


def _run_ray(items: list[Item], address: str, cpus: int, threads: int | None = None) -> Iterator[dict]:
    """Items as Ray tasks (one GPU each on a GPU cluster, else ``cpus`` CPUs each); results stream
    back as they finish, and the driver writes files and manifest, so workers need no shared disk."""
    with ray_session(address) as ray:
        gpus = ray.cluster_resources().get("GPU", 0)
        task = ray.remote(num_cpus=cpus, num_gpus=1 if gpus else 0, max_retries=1)(_ray_task)
        pending = {task.remote(it.as_dict(), threads or cpus): it for it in items}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                item = pending.pop(done[0])
                try:
                    yield ray.get(done[0])
                except Exception as e:  # the worker died (node lost, out of memory)
                    yield _failed(item, f"ray task failed ({type(e).__name__}: {str(e).splitlines()[0][:200]})")
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
