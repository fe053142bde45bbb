"""Probing units over a whole dataset: index a folder of images once, then read each unit's top
examples and patches, find nearest neighbours, draw embeddings, and write unit pages.

    from synthviz import dataset
    run = dataset.index("photos/", "run/", layers="_blocks.5", size=224)
    dataset.top_examples(run, "_blocks.5", unit=3)
    dataset.nearest(run, "photos/cat.jpg", "_blocks.5", k=8)
    dataset.activation_maps(run, "_blocks.5", unit=3, k=4)   # (4, 3, S, S) overlays
"""

from .embedding import embed, embedding_grid, snap_to_grid
from .facets import cluster_top_images, render_facets
from .filters import filter_images
from .index import index
from .maps import activation_maps
from .neighbours import nearest
from .pages import add_unit_pages, write_unit_pages
from .receptive import ReceptiveField, receptive_field
from .run import Example, Run, open_run, top_examples
from .sources import Source, find_images

__all__ = ["Example", "ReceptiveField", "Run", "Source", "activation_maps", "add_unit_pages", "cluster_top_images",
           "embed", "embedding_grid", "filter_images", "find_images", "index", "nearest", "open_run", "receptive_field",
           "render_facets", "snap_to_grid", "top_examples", "write_unit_pages"]
