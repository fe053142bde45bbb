"""Galleries: a spec (which presets, over which models, classes, layers, channels, images) expanded
into independent items, rendered sequentially, in worker processes or as Ray tasks, recorded in a
resumable manifest and shown on one self-contained ``index.html``.

* :mod:`.spec` — the TOML spec and its expansion into items;
* :mod:`.render` — one item into plain data (PNG bytes, captions), in any process;
* :mod:`.manifest` — the resumable, journaled record of finished and failed items;
* :mod:`.executors` — worker processes and Ray tasks;
* :mod:`.page` — the HTML page;
* :mod:`.build` — :func:`build_gallery`, which ties them together.
"""

from .build import GalleryRun, build_gallery, summarize
from .manifest import Manifest
from .page import write_index
from .render import render_item
from .spec import DEFAULT_SPEC, Item, Section, Spec, find_spec, load_spec, spec_dirs

__all__ = ["DEFAULT_SPEC", "GalleryRun", "Item", "Manifest", "Section", "Spec", "build_gallery", "find_spec",
           "load_spec", "render_item", "spec_dirs", "summarize", "write_index"]
