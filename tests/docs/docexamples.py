"""Helpers of the documentation tests: where the README and the pages are, the photos the examples
name, and the Python blocks of a Markdown page."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"

# every file name the examples read, and the scikit-image photo written there
PHOTOS = {"cat.png": "chelsea", "cat.jpg": "chelsea", "brick.png": "brick", "a.png": "grass", "b.png": "gravel", "photo.png": "coffee",
          "photos/cat.jpg": "chelsea", "photos/coffee.jpg": "coffee", "photos/astronaut.jpg": "astronaut",
          "photos/rocket.jpg": "rocket", "photos/coins.png": "coins", "photos/camera.png": "camera",
          "my_photos/chelsea.png": "chelsea", "my_photos/coffee.png": "coffee", "my_photos/rocket.png": "rocket"}


def python_blocks(text: str) -> list[str]:
    """The bodies of the ```python fenced blocks of a Markdown text, in order."""
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def doc_pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))
