"""Compute the amplitude spectrum shipped with synthviz (``synthviz/maco_spectrum.pt``) from the
scikit-image colour photos: ``python benchmarks/maco_spectrum.py``. Prints the radial profile."""

from __future__ import annotations

import torch
from skimage import data

from synthviz.maco import SPECTRUM_FILE, SPECTRUM_SIZE, amplitude_spectrum
from machine import machine

PHOTOS = ["astronaut", "chelsea", "coffee", "rocket"]


def main() -> None:
    images = [torch.from_numpy(getattr(data, name)()[..., :3].copy()).permute(2, 0, 1).float() / 255
              for name in PHOTOS]
    spectrum = amplitude_spectrum(images, SPECTRUM_SIZE)
    torch.save(spectrum.half().clone(), SPECTRUM_FILE)
    row = spectrum.mean(0)[0]
    print(f"saved {SPECTRUM_FILE} {tuple(spectrum.shape)} from {len(images)} photos")
    print("amplitude at frequency 1, 4, 16, 64:", [round(float(row[k]), 3) for k in (1, 4, 16, 64)])


if __name__ == "__main__":
    main()
    print(machine())  # the machine the figures above were measured on
