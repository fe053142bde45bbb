"""Probing units over a whole dataset: index a folder of images once, then read each unit's top
examples and patches, find nearest neighbours, draw embeddings, and write unit pages.

    from synthviz import dataset
    run = dataset.index("photos/", "run/", layers="_blocks.5", size=224)
    dataset.top_examples(run, "_blocks.5", unit=3)
"""

from .index import index
from .receptive import ReceptiveField, receptive_field
from .run import Example, Run, open_run, top_examples
from .sources import Source, find_images

__all__ = ["Example", "ReceptiveField", "Run", "Source", "find_images", "index", "open_run", "receptive_field",
           "top_examples"]
