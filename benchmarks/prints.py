"""A print-size style render with set limits (issue 30): `synthviz.style(..., tile=...)` at
``--size`` px (default 4096) with ``--top-steps`` steps at each of the finer scales (the ladder
grows by √2), on the embedded model; prints the time, the peak memory of this process and what one
untiled pass would need by `synthviz.cost`'s estimate, and names the machine.

    python benchmarks/prints.py                                   # 4096 px, tiles of 512, 20 steps on top
    python benchmarks/prints.py --size 512 --tile 256 --top-steps 2 --scales 2   # does it run?
"""

from __future__ import annotations

import argparse
import resource
import time
import warnings

import torch

from machine import machine


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--top-steps", type=int, default=20, help="steps at each scale but the coarsest (twice there)")
    ap.add_argument("--scales", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")

    import skimage.data

    import synthviz
    from synthviz.cost import render_bytes_per_pixel
    from synthviz.io import to_tensor

    model = synthviz.load_model("efficientnet_lite0", device=args.device)
    content, style = to_tensor(skimage.data.chelsea()), to_tensor(skimage.data.immunohistochemistry())
    start = time.perf_counter()
    result = synthviz.style(model, content, style, size=args.size, tile=args.tile, steps=2 * args.top_steps,
                            scales=args.scales, average=0.9, progress=True)
    seconds = time.perf_counter() - start
    h, w = result.images.shape[-2:]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    untiled = render_bytes_per_pixel(model) * h * w
    gpu = (f"; GPU peak {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if args.device.startswith("cuda") else "")
    print(f"style {w}x{h} px, tiles of {args.tile} px, scales {[s['size'] for s in result.info['scales']]}, "
          f"steps {[s['steps'] for s in result.info['scales']]}")
    print(f"time {seconds:.0f} s; peak memory of the process {peak / 2**30:.2f} GiB{gpu}; "
          f"one untiled pass would need about {untiled / 2**30:.1f} GiB (synthviz.cost's estimate)")
    print(result.info["report"])
    print(machine())


if __name__ == "__main__":
    main()
