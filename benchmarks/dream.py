"""Peak memory of a tiled DeepDream at 1024, 2048 and 4096 px: tiles bound the activations, so it
grows far slower than the pixel count (4x and 16x). An untiled 1024 px dream is measured for contrast.

Each case runs in a fresh process. On CUDA the figure is ``torch.cuda.max_memory_allocated``;
on the CPU it is the rise of the process's peak resident memory (``ru_maxrss``) over its level
after loading the model and the photo. Run: ``python benchmarks/dream.py [--device cpu|cuda]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from machine import machine

CASES = [(1024, 512), (2048, 512), (4096, 512), (1024, 0)]  # (side px, tile px; 0 = untiled)


def measure(size: int, tile: int, device: str, steps: int) -> dict:
    import skimage.data
    import torch

    import synthviz
    from synthviz.io import resize, to_tensor

    model = synthviz.load_model("efficientnet_lite0", device=device)
    photo = resize(to_tensor(skimage.data.chelsea()), (size, size))
    cuda = model.device.type == "cuda"
    synthviz.dream(model, resize(photo, 128), octaves=1, steps=1)  # load kernels and libraries first
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    start = time.perf_counter()
    result = synthviz.dream(model, photo, octaves=2, steps=steps, tile=tile or None)
    if cuda:
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    seconds = time.perf_counter() - start
    assert result.images.shape[-2:] == (size, size)
    return {"size": size, "tile": result.info["tile"], "peak_mb": (peak - base) / 2**20, "seconds": seconds,
            "kind": "CUDA max allocated" if cuda else "CPU peak RSS rise"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=2, help="steps per octave (2 octaves)")
    parser.add_argument("--case", nargs=2, type=int, help=argparse.SUPPRESS)  # internal: one case, JSON out
    args = parser.parse_args()
    if args.case:
        print(json.dumps(measure(*args.case, args.device, args.steps)))
        return
    rows = []
    for size, tile in CASES:
        out = subprocess.run([sys.executable, __file__, "--device", args.device, "--steps", str(args.steps),
                              "--case", str(size), str(tile)], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(f"{r['size']:5d} px  {'tile ' + str(r['tile']) if r['tile'] else 'untiled':9s}  "
              f"peak {r['peak_mb']:8.1f} MB  ({r['kind']})  {r['seconds']:6.1f} s", flush=True)
    t1024, t2048, t4096, whole = rows
    print(f"pixels 2048/1024: 4.0x, tiled peak memory {t2048['peak_mb'] / t1024['peak_mb']:.2f}x;  "
          f"pixels 4096/1024: 16.0x, tiled peak memory {t4096['peak_mb'] / t1024['peak_mb']:.2f}x;  "
          f"untiled/tiled at 1024: {whole['peak_mb'] / t1024['peak_mb']:.2f}x")
    # peak = fixed (one tile's activations) + per pixel (the image copies optimizer and engine keep)
    per_px = (t2048["peak_mb"] - t1024["peak_mb"]) * 2**20 / (2048**2 - 1024**2)
    fixed = t1024["peak_mb"] - per_px * 1024**2 / 2**20
    untiled_px = (whole["peak_mb"] - fixed) * 2**20 / 1024**2
    print(f"tiled: {fixed:.0f} MB fixed (a tile's activations) + {per_px:.0f} bytes/pixel (image copies); "
          f"untiled: about {untiled_px:.0f} bytes/pixel")


if __name__ == "__main__":
    main()
    print(machine())  # the machine the figures above were measured on
