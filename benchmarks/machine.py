"""The machine a benchmark ran on, in one line: every script prints it beside its figures, so a
figure in the docs names the machine it was measured on; and the best-of timer the scripts share."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable

import torch


def machine(device: torch.device | str | None = None) -> str:
    """This machine in words: host, CPU model, cores, torch version and threads, and the GPU
    (``device``'s when it is a CUDA device, else the first one present)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    device = torch.device(device) if device is not None else None
    gpu = ""
    if torch.cuda.is_available() and (device is None or device.type == "cuda"):
        gpu = f", {torch.cuda.get_device_name(device if device is not None and device.index is not None else 0)}"
    return (f"machine: {platform.node()}: {cpu}, {os.cpu_count()} cores, torch {torch.__version__} with "
            f"{torch.get_num_threads()} thread(s){gpu}")


def best_of(fn: Callable[[], object], repeat: int = 1, warm: bool = False) -> float:
    """The best wall time in seconds of ``repeat`` calls of ``fn`` (after one untimed call when
    ``warm``: oneDNN and cuDNN build their kernels for a new shape), CUDA work included."""
    if warm:
        fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best
