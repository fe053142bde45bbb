"""Concepts: directions in a layer's activation space, learnt from data as a dictionary (NMF as in
CRAFT, sparse autoencoders: ReLU, TopK, BatchTopK, JumpReLU, Archetypal), with the pictures that
explain them (top images and heatmaps, rendered concepts, an image decomposed into its concepts).

    from synthviz import concepts
    run = concepts.learn("photos/", "run/", layer="_blocks.5", method="nmf", concepts=8, size=128)
    concepts.render_concepts(run, "0-7", steps=64)                    # run/renders/concept-<k>.png
    found = concepts.concept_map(run, "photos/cat.jpg")              # {"maps": (K, H, W), "importance": (K,), ...}
    d = concepts.Dictionary.load("run/dictionary.pt")                 # atoms (K, C), encode(x (n, C)) -> (n, K)
"""

from .dictionary import Dictionary, get_method, method_names
from .learn import learn
from .outputs import read_concepts, read_importance
from .pages import write_pages
from .pictures import coefficient_maps, concept_map, open_concepts, render_concepts
from .registry import METHODS, DictionaryMethod, register_dictionary

__all__ = ["METHODS", "Dictionary", "DictionaryMethod", "coefficient_maps", "concept_map", "get_method", "learn",
           "method_names", "open_concepts", "read_concepts", "read_importance", "register_dictionary",
           "render_concepts", "write_pages"]
