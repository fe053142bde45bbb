"""Throughput of a 16-channel layer grid: the channels rendered together in one batched
optimization (the engine's batch) against one by one, same steps and size.

    python benchmarks/gallery.py [--size 96] [--steps 32] [--threads 2] [--layer _blocks.8]

Prints channels per second for both and their ratio (measured in the same run).
"""

from __future__ import annotations

import argparse
import time

import torch

from synthviz.presets import run_preset
from machine import machine


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--layer", default="_blocks.8")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    common = {"layer": args.layer, "units": "0-15", "size": args.size, "steps": args.steps, "device": args.device}
    run_preset("channel-grid", {**common, "units": "0-1", "steps": 2})  # warm-up: model load, kernels

    timings = {}
    for label, batch in (("batched (16 in one optimization)", 16), ("one by one", 1)):
        start = time.perf_counter()
        result = run_preset("channel-grid", {**common, "batch_size": batch})
        timings[label] = time.perf_counter() - start
        assert len(result.images) == 16
        print(f"{label:34s} {timings[label]:7.2f} s  {16 / timings[label]:6.2f} channels/s  "
              f"mean objective {result.values.mean():.3f}")
    batched, single = timings.values()
    print(f"speed-up of batching: {single / batched:.2f}x  ({args.layer}, 16 channels, {args.size} px, "
          f"{args.steps} steps, {args.threads} thread(s), {args.device})")


if __name__ == "__main__":
    main()
    print(machine())  # the machine the figures above were measured on
