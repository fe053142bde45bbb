"""Engine overhead against the floor, on the embedded model at 128 px.

The floor is a bare forward to the same layer plus a backward to the input, with frozen
parameters, written by hand; the engine runs a full render step (parameterization, hooks,
truncation, objective, Adam, projection, history). Prints ratios measured in one run; the
target is at most 1.15 for a mid layer and for the class logits. The engine runs the fused twin
(synthviz.fusion) and the floor the original network, so that ratio nets the twin's gain against
the engine's overhead; the second ratio, against the same floor on the twin ("fused floor"),
is the engine's overhead alone.

    python benchmarks/engine.py [--size 128] [--steps 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch

from synthviz import load_model
from synthviz import objectives as obj
from synthviz.engine import render
from synthviz.params import PixelImage
from machine import machine


def bare_forward(model, x, depth: int | None, net=None):
    """EfficientNet-Lite0 (``net``: its fused twin) run by hand up to block ``depth`` (None: the
    whole network)."""
    z = model.normalize(x)
    if net is None:
        net = model.net
    else:
        z = z.contiguous(memory_format=torch.channels_last)
    if depth is None:
        return net(z)
    h = net._swish(net._bn0(net._conv_stem(z)))
    for block in net._blocks[: depth + 1]:
        h = block(h)
    return h


def floor_step(model, x, depth, score, net=None):
    x = x.detach().requires_grad_(True)
    out = bare_forward(model, x, depth, net)
    (-score(out)).backward()
    return x.grad


def timed(fn, steps: int) -> float:
    fn()  # warm-up: oneDNN builds its kernels for this shape
    t = time.perf_counter()
    for _ in range(steps):
        fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / steps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds; the best of each is kept")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model("efficientnet_lite0", device=args.device)
    model.net.requires_grad_(False)
    x = torch.rand(1, 3, args.size, args.size, device=model.device)

    cases = {
        "early layer _blocks.1": (1, "_blocks.1", obj.channel("_blocks.1", 3)),
        "mid layer _blocks.8": (8, "_blocks.8", obj.channel("_blocks.8", 3)),
        "class logits": (None, "logits", obj.class_score(285)),
    }
    print(f"engine vs floor, efficientnet_lite0, {args.size} px, {args.threads} threads, device {model.device}")
    model(x)  # builds the fused twin
    twin = model._twin[1].net
    per_step = {}
    for label, (depth, layer, objective) in cases.items():
        unit = (lambda out: out[:, 285].sum()) if depth is None else (lambda out: out[:, 3].mean())
        param = PixelImage(1, args.size, init=x).to(model.device)
        floor, fused, engine = float("inf"), float("inf"), float("inf")
        for _ in range(args.rounds):  # alternate, keep the best: robust to a busy machine
            floor = min(floor, timed(lambda: floor_step(model, x, depth, unit), args.steps))
            fused = min(fused, timed(lambda: floor_step(model, x, depth, unit, twin), args.steps))
            engine = min(engine, timed(lambda: render(model, objective, param, steps=args.steps, seed=None), 1)
                         / args.steps)
        per_step[label] = engine
        print(f"  {label:24s} floor {floor * 1e3:7.2f}  fused floor {fused * 1e3:7.2f}  engine {engine * 1e3:7.2f} "
              f"ms/step   ratio {engine / floor:5.3f} (target <= 1.15 for mid and logits)   "
              f"vs fused floor {engine / fused:5.3f}")
    early, full = per_step["early layer _blocks.1"], per_step["class logits"]
    print(f"  early-layer objective {early * 1e3:.2f} ms/step vs full network {full * 1e3:.2f} ms/step: "
          f"{full / early:.1f}x cheaper (truncated forward)")


if __name__ == "__main__":
    main()
    print(machine())  # the machine the figures above were measured on
