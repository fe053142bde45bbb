"""Style transfer cost on this machine: seconds per optimizer step and peak memory at 256 and 512 px,
and a 512 px result made with the coarse-to-fine ladder against one made at full size from the start.

    python benchmarks/style.py            # 256 and 512 px, ladder vs full size
    python benchmarks/style.py --big 2048 # also one 2048 px measurement (slow on a CPU)

Each size runs in a fresh process so its peak memory (RSS, or CUDA peak) is its own. The ladder's
final loss is compared with the full-size run's loss curve: the time the full-size run needed to
reach the ladder's loss (or that it never did) is the fair comparison.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import resource
import sys
import time
import warnings
from machine import machine


def _photos():
    import skimage.data

    from synthviz.io import to_tensor

    return to_tensor(skimage.data.chelsea()), to_tensor(skimage.data.immunohistochemistry())


def _measure(size: int, steps: int, device: str, queue) -> None:
    import torch

    import synthviz

    warnings.simplefilter("ignore")
    torch.set_num_threads(min(torch.get_num_threads(), 16))
    model = synthviz.load_model("efficientnet_lite0", device=device)
    content, style = _photos()
    synthviz.style(content, style, size=64, steps=1, scales=1, model=model)  # warm-up
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for n in (1, steps):  # the difference leaves out the per-render setup (targets, measurements)
        t = time.perf_counter()
        synthviz.style(content, style, size=size, steps=n, scales=1, model=model)
        times.append(time.perf_counter() - t)
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    queue.put({"size": size, "s_per_step": (times[1] - times[0]) / (steps - 1), "peak_mb": peak, "base_mb": base})


def measure(size: int, steps: int, device: str) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    p = ctx.Process(target=_measure, args=(size, steps, device, queue))
    p.start()
    out = queue.get()
    p.join()
    return out


def ladder_vs_full(device: str, steps: int = 60, full_steps: int = 150) -> dict:
    import torch

    import synthviz

    warnings.simplefilter("ignore")
    model = synthviz.load_model("efficientnet_lite0", device=device)
    content, style = _photos()
    t = time.perf_counter()
    ladder = synthviz.style(content, style, size=512, steps=steps, scales=3, model=model)
    t_ladder = time.perf_counter() - t
    target = ladder.info["scales"][-1]["end"]  # final objective at 512 px (higher is better)
    t = time.perf_counter()
    full = synthviz.style(content, style, size=512, steps=full_steps, scales=1, model=model)
    t_full = time.perf_counter() - t
    final_full = full.info["scales"][-1]["end"]
    values = torch.cat([full.history[:, 0], torch.tensor([final_full])])
    reached = (values >= target).nonzero()
    t_reach = t_full * int(reached[0]) / full.steps if len(reached) else None
    return {"ladder_s": t_ladder, "ladder_loss": -target, "ladder_steps": [s["steps"] for s in ladder.info["scales"]],
            "full_s": t_full, "full_steps": full.steps, "full_loss": -final_full, "full_s_to_ladder_loss": t_reach}


def main() -> None:
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    big = int(sys.argv[sys.argv.index("--big") + 1]) if "--big" in sys.argv else None
    print(f"device: {device}; {machine(device)}")
    for size, steps in [(256, 21), (512, 11)] + ([(big, 3)] if big else []):
        r = measure(size, steps, device)
        mem = f"peak {r['peak_mb']:.0f} MiB" + (f" RSS ({r['peak_mb'] - r['base_mb']:.0f} MiB above the loaded model)"
                                                if device == "cpu" else " CUDA")
        print(f"style {size} px (L-BFGS, pixels): {r['s_per_step']:.3f} s/step, {mem}", flush=True)
    r = ladder_vs_full(device)
    print(json.dumps(r, indent=1))
    reach = (f"{r['full_s_to_ladder_loss']:.1f} s to reach it" if r["full_s_to_ladder_loss"] is not None
             else f"never reached it in {r['full_steps']} steps ({r['full_s']:.1f} s; final loss {r['full_loss']:.4f})")
    print(f"512 px: ladder {r['ladder_s']:.1f} s (loss {r['ladder_loss']:.4f}); full size from the start {reach}")


if __name__ == "__main__":
    main()
