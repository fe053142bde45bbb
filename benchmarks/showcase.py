"""Wall time of the README's first command's main job: `synthviz gallery` (the showcase) built
from scratch into a temporary folder on this machine.

    python benchmarks/showcase.py [--threads 2] [--keep DIR]

Prints the seconds and the number of items; the committed `gallery/` is never touched (``--keep``
builds into DIR, a new folder, and leaves it there, e.g. to refresh `gallery/` from it).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from machine import machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--keep", default="", help="build into this new folder and keep it")
    args = parser.parse_args()
    if args.keep and os.path.exists(args.keep):
        sys.exit(f"{args.keep} exists; name a new folder")
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.abspath(args.keep) if args.keep else os.path.join(tmp, "gallery")
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "synthviz", "gallery", "--out", out], env=env,
                              capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if proc.returncode:
            sys.exit(f"the gallery failed: {proc.stderr.strip().splitlines()[-1:]}")
        items = len(os.listdir(os.path.join(out, "items")))
    print(f"showcase: {seconds:.0f} s ({seconds // 60:.0f} min {seconds % 60:.0f} s), {items} image files, "
          f"{machine()}")


if __name__ == "__main__":
    main()
