"""Why the forward-only attribution methods run small batches on the CPU: Score-CAM's masked
forwards (embedded model, last stage, 224 px) at the automatic batch and at 16, with seconds and
minor page faults per image; and pytorch-grad-cam's ScoreCAM (all 1280 channels) at its default
batch of 16 and at the automatic batch. Each case runs in a fresh process of its own: the cost of
a large batch depends on what the process allocated before (after pytorch-grad-cam has run, a
batch of 16 may fault no more than a batch of 3).

    python benchmarks/batching.py [--channels 320] [--threads 2] [--no-peer]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import resource
import subprocess
import sys
import time

import torch

from saliency import Normalized, photos  # benchmarks/saliency.py: the same photos and peer wrapper
from synthviz.attribution.batching import forward_batch
from synthviz.cost import largest_activation
from synthviz.attribution.cam_perturb import _scorecam_weights
from synthviz.layers import Tap
from synthviz.models import load_model
from machine import machine

LAYER = "_bn1"
TARGET = 285


def per_image(fn, n: int) -> tuple[float, float]:
    """(seconds, minor page faults) per image of one call of ``fn`` over ``n`` images."""
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    return seconds / n, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / n


def one_case(who: str, batch: int, channels: int) -> None:
    """Time one case in this process and print its line."""
    model = load_model("efficientnet_lite0", device="cpu")
    x = photos(1, 224)
    batch = forward_batch(model, x, None) if batch == 0 else batch
    if who == "peer":
        import pytorch_grad_cam as pgc
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        with pgc.ScoreCAM(model=Normalized(model), target_layers=[model.net._bn1]) as cam, \
                contextlib.redirect_stderr(io.StringIO()):
            cam.batch_size = batch
            s, f = per_image(lambda: cam(input_tensor=x.clone(), targets=[ClassifierOutputTarget(TARGET)]), 1280)
        print(f"pytorch-grad-cam ScoreCAM, batch {batch:2d}: {s * 1280:6.1f} s per image, "
              f"{s * 1000:5.1f} ms and {f:6.0f} page faults per masked image (1280 channels)")
        return
    with Tap(model, [LAYER]) as tap:
        act = tap(x)[LAYER][:, :channels]
    targets = torch.tensor([TARGET])
    _scorecam_weights(model, x, targets, act[:, :batch], None, LAYER, batch_size=batch)  # shapes warmed up
    s, f = per_image(lambda: _scorecam_weights(model, x, targets, act, None, LAYER, batch_size=batch), channels)
    print(f"synthviz Score-CAM forwards, batch {batch:2d}: {s * 1000:5.1f} ms and {f:6.0f} page faults "
          f"per masked image ({channels} channels)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=320, help="Score-CAM channels timed on synthviz's side")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-peer", action="store_true", help="skip pytorch-grad-cam")
    parser.add_argument("--case", nargs=2, metavar=("WHO", "BATCH"), help=argparse.SUPPRESS)  # one child process
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.case:
        return one_case(args.case[0], int(args.case[1]), args.channels)
    model = load_model("efficientnet_lite0", device="cpu")
    x = photos(1, 224)
    auto = forward_batch(model, x, None)
    print(f"efficientnet_lite0, 224 px, {torch.get_num_threads()} threads; largest activation "
          f"{largest_activation(model, x) / 2**20:.1f} MiB per image -> automatic batch {auto}; one process per line")
    try:
        import pytorch_grad_cam  # noqa: F401
        whos = ["synthviz"] if args.no_peer else ["synthviz", "peer"]
    except ImportError:
        print("pytorch-grad-cam: not installed")
        whos = ["synthviz"]
    for who in whos:
        for batch in (auto, 16):
            subprocess.run([sys.executable, __file__, "--case", who, str(batch), "--channels", str(args.channels),
                            "--threads", str(args.threads)], check=True)


if __name__ == "__main__":
    main()
    print(machine())  # the machine the figures above were measured on
