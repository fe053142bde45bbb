"""The indexing pass on a Ray cluster: Ray actors (one per CPU, or per GPU when the cluster has
GPUs) each hold the model and turn a batch of image paths into reduced activations; the driver
merges the batches in their order into the same statistics and files a local pass writes.

Batches are the same fixed slices of the image list as in a local pass and are merged in order,
with a bounded number in flight, so the files are the same and the driver's memory stays flat.
(Ray core actors rather than Ray Data: the pass needs nothing from Ray Data but ordered
streaming, and Ray Data would add pandas and pyarrow to the dependencies.)
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch

from ..errors import SynthvizError
from ..models import Model


def import_ray():
    try:
        import ray
    except ImportError:
        raise SynthvizError('--ray needs Ray, an optional extra: pip install "synthviz[ray]"') from None
    return ray


class BatchWorker:
    """Holds the model; ``run(first, paths)`` reads and forwards one batch. Used as a Ray actor."""

    def __init__(self, model: Model, names: list[str], size: int, reduce: str, threads: int):
        from ..models import resolve_device

        torch.set_num_threads(threads)
        self.model = model.to(resolve_device(None))
        self.names, self.size, self.reduce = names, size, reduce
        self.channels = None

    def run(self, first: int, paths: list[str]):
        from ..layers import Tap
        from .index import forward_batch
        from .sources import load_batch

        first, images, kept, failed = load_batch(paths, first, self.size)
        if not kept:
            return first, kept, failed, None
        with self.model.evaluating(), Tap(self.model, self.names) as tap:
            results = forward_batch(self.model, tap, images, self.reduce)
        return first, kept, failed, {n: (v.numpy(), p.numpy()) for n, (v, p) in results.items()}


def run_ray(state, model: Model, names: list[str], size: int, reduce: str, batch_size: int, address: str,
            progress: bool, checkpoint_every: float, on_batch: Callable[[int], None] | None,
            cpus_per_worker: int = 1) -> None:
    """Run the pass's remaining batches on Ray (``address``: ``auto``, ``local`` or ``ray://HOST:PORT``;
    a Ray session already started in this process is used as it is)."""
    from .index import drive

    ray = import_ray()
    started = False
    if not ray.is_initialized():
        ray.init(address=None if address == "local" else address, include_dashboard=False,
                 log_to_driver=False, ignore_reinit_error=True)
        started = True
    try:
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        count = gpus or max(1, int(resources.get("CPU", 1)) // cpus_per_worker)
        options = {"num_gpus": 1} if gpus else {"num_cpus": cpus_per_worker}
        actor = ray.remote(**options)(BatchWorker)
        # the actors get a CPU copy; the caller's model stays where it is
        shared = ray.put(model if model.device.type == "cpu" else copy.deepcopy(model).to("cpu"))
        workers = [actor.remote(shared, names, size, reduce, cpus_per_worker) for _ in range(count)]
        paths = state.source.paths
        starts = list(range(state.batches_done * batch_size, len(paths), batch_size))

        def ordered():
            pending, window = {}, 2 * len(workers)
            for b, first in enumerate(starts):
                pending[b] = workers[b % len(workers)].run.remote(first, paths[first : first + batch_size])
                if len(pending) >= window:
                    yield ray.get(pending.pop(min(pending)))
            while pending:
                yield ray.get(pending.pop(min(pending)))

        def step(item):
            first, kept, failed, results = item
            results = state.empty() if results is None else {
                n: (torch.from_numpy(v.copy()), torch.from_numpy(p.copy())) for n, (v, p) in results.items()}
            return first, kept, failed, results

        drive(state, ordered(), len(paths), progress, checkpoint_every, on_batch, step)
    finally:
        if started:
            ray.shutdown()
