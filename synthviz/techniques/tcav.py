"""TCAV (Kim et al. 2018): does a concept, given by example images, raise a class's score at a layer?

The recipe: read the concept, random and input images; one pass over the concept and random
images records the layers' activations, one forward + backward over the inputs the gradients
of the class score at the layers (:class:`synthviz.layers.Tap`); the CAVs, scores and the
calibrated null are :mod:`synthviz.concepts.tcav`'s. CAVs are cached (``cache``: a folder, one
``LAYER--CONCEPT.pt`` each, weights only) and reused when the model, images and settings match.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Union

import torch

from ..checks import in_range, positive
from ..concepts import tcav as T
from ..errors import BadValue, SynthvizError
from ..io import as_image, atomic_write, list_images, make_grid, read_images, resize, skipped_note, state_bytes
from ..layers import LOGITS, Tap, default_layer
from ..models import DEFAULT_MODEL, Model, ModelLike, load_model
from ..progress import progress as progress_bar
from ..result import Result
from ..targets import as_target
from .registry import register_technique

ImageSet = Union[str, os.PathLike, torch.Tensor, list]  # a folder, (N, 3, H, W) images, or a list of files/images
_SMALL = ["skimage:chelsea", "skimage:astronaut", "skimage:coffee", "skimage:rocket", "skimage:camera",
          "skimage:coins", "skimage:horse"]


def read_set(source, size: int, min_side: int, skipped: list) -> torch.Tensor:
    """A folder of images, an (N, 3, H, W) tensor or a list of files / (1, 3, H, W) tensors -> (N, 3, size, size)."""
    if isinstance(source, (str, os.PathLike)):
        source = list_images(source)
    if isinstance(source, torch.Tensor):
        source = [source] if source.dim() == 3 else list(source.split(1))
    images = []
    for item in source:
        if isinstance(item, torch.Tensor):
            images.append(resize(as_image(item, what="a concept, random or input image", batch=True), (size, size)))
        else:
            images += [img for _, img in read_images([item], (size, size), skipped, min_side)]
    if not images:
        raise BadValue(f"no readable image in {source!r}; pass a folder of images or an (N, 3, H, W) tensor")
    return torch.cat(images)


def _named(concepts) -> dict:
    """Concepts as {name: source}: a folder is named by its folder name, anything else ``concept<i>``."""
    if isinstance(concepts, dict):
        return dict(concepts)
    if concepts is None or isinstance(concepts, (str, os.PathLike, torch.Tensor)):
        concepts = [] if concepts is None else [concepts]
    named = {}
    for i, c in enumerate(concepts):
        name = Path(c).name if isinstance(c, (str, os.PathLike)) else f"concept{i}"
        named[name if name not in named else f"{name}-{i}"] = c
    if not named:
        raise BadValue("no concept given; pass concepts=[FOLDER, ...] (--concept DIR)")
    return named


def _flat_passes(m: Model, images: torch.Tensor, layers: list[str], batch: int, bar, target=None) -> dict:
    """{layer: (N, F)}: the layers' activations, or (``target``) the target score's gradients there."""
    out: dict = {layer: [] for layer in layers}
    grad = "through" if target is not None else None
    with Tap(m, layers + ([LOGITS] if target is not None else []), grad=grad, unfold=True) as tap:
        for start in range(0, len(images), batch):
            x = images[start:start + batch].to(m.device)
            if target is None:
                with torch.no_grad():
                    acts = tap(x)
                values = [acts[layer] for layer in layers]
            else:
                with torch.enable_grad():
                    acts = tap(x.requires_grad_(True))
                    t = target.for_batch(len(x)) if target.rows is None else target
                    score = t(acts[LOGITS]).sum()
                    values = torch.autograd.grad(score, [acts[layer] for layer in layers])
            for layer, v in zip(layers, values):
                out[layer].append(v.detach().flatten(1).float().cpu())
            bar.advance(len(x))
    return {layer: torch.cat(v) for layer, v in out.items()}


def _fingerprint(m: Model) -> str:
    """The model's weights in short: shape, sum and sum of squares of each floating tensor, hashed."""
    h = hashlib.sha1(m.name.encode())
    for name, t in m.net.state_dict().items():
        if torch.is_tensor(t) and t.is_floating_point():
            t = t.detach().double()
            h.update(f"{name}{tuple(t.shape)}{float(t.sum()):.9g}{float(t.square().sum()):.9g}".encode())
    return h.hexdigest()


def _key(*parts) -> str:
    """A key for the CAV cache: a hash of ``parts`` (the model's fingerprint, the settings, the images' digests)."""
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()


def _cache_path(cache, layer: str, name: str) -> Path | None:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in f"{layer}--{name}")
    return None if cache is None else Path(cache) / f"{safe}.pt"


def _cached(path: Path | None, key: str):
    if path is None or not path.is_file():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a broken or foreign file is refitted and replaced
        return None
    return (saved["cavs"], saved["accuracy"]) if saved.get("key") == key else None


def _store(path: Path | None, key: str, cavs: torch.Tensor, accuracy: torch.Tensor) -> None:
    if path is not None:
        atomic_write(path, state_bytes({"key": key, "cavs": cavs, "accuracy": accuracy}))


def _check(runs: int, alpha: float, size: int, nulls: int | None, target) -> None:
    positive("runs", runs, integer=True)
    positive("size", size, integer=True)
    in_range("alpha", alpha, 1e-9, 0.999)
    if nulls is not None:
        positive("nulls", nulls, integer=True)
    if target is None:
        raise BadValue("TCAV needs a class: pass target=C (--class C), an index or a name")


def _layers(m: Model, layers) -> list[str]:
    if layers is None:
        return [default_layer(m, "mid")]
    layers = [s.strip() for s in layers.split(",")] if isinstance(layers, str) else list(layers)
    if not layers or not all(layers):
        raise BadValue("no layer given; pass layers=['_blocks.5'] or --layers L1,L2 (names from `synthviz layers`)")
    return layers


def _digest(images: torch.Tensor) -> str:
    return hashlib.sha1((images * 255).round().to(torch.uint8).numpy().tobytes()).hexdigest()


def _read_all(m: Model, named: dict, random, inputs, size: int, seed: int) -> tuple:
    """(concept sets {name: (n, 3, S, S)}, random, inputs, skipped, notes); a concept is cut to the
    size the null allows (:func:`synthviz.concepts.tcav.sizes`) with a note."""
    skipped: list = []
    for value, what in ((random, "random images (--random DIR)"), (inputs, "inputs (--inputs DIR)")):
        if value is None:
            raise BadValue(f"no {what} given; pass a folder of images or an (N, 3, H, W) tensor")
    rand = read_set(random, size, m.min_size, skipped)
    xs = read_set(inputs, size, m.min_size, skipped)
    sets, notes = {}, []
    gen = torch.Generator().manual_seed(seed)
    for name, source in named.items():
        imgs = read_set(source, size, m.min_size, skipped)
        n, half = T.sizes(len(imgs), len(rand))
        if len(imgs) < 2 or n + half + 1 > len(rand):
            raise BadValue(f"concept '{name}' has {len(imgs)} image(s) and the random set {len(rand)}: TCAV needs "
                           f"at least 2 concept images and 1.5x as many random images plus one; add random images")
        if n < len(imgs):
            imgs = imgs[torch.randperm(len(imgs), generator=gen)[:n].sort().values]
            notes.append(f"{name}: used {n} of its images (a null concept of that size is drawn from the "
                         f"{len(rand)} random images, which need 1.5x as many plus one)")
        sets[name] = imgs
    return sets, rand, xs, skipped, notes


def _test_layer(layer: str, sets: dict, acts_r: dict, acts_c: dict, grads: dict, got: dict, settings: dict,
                bar) -> list[dict]:
    """The rows of one layer: each concept's CAVs (cached or fitted and stored), scores and p-value."""
    runs, seed, nulls, tests, alpha = (settings[k] for k in ("runs", "seed", "nulls", "tests", "alpha"))
    rows, null_of_size = [], {}
    for name, imgs in sets.items():
        cached = got[(layer, name)]
        if cached is None:
            cached = T.fit_cavs(acts_c[name][layer], acts_r[layer], runs, seed)
            _store(_cache_path(settings["cache"], layer, name), settings["keys"][(layer, name)], *cached)
        cavs, accuracy = cached
        if cavs.shape[1] != grads[layer].shape[1]:
            raise SynthvizError(f"the cached CAVs of {name} at {layer} do not fit the layer; remove {settings['cache']}")
        scores = T.run_scores(grads[layer], cavs)
        if len(imgs) not in null_of_size:
            null_of_size[len(imgs)] = T.null_statistics(acts_r[layer], grads[layer], len(imgs), runs, nulls, seed)
        p = T.p_value(T.statistic(scores, T.run_cosines(grads[layer], cavs)), null_of_size[len(imgs)])
        rows.append({"layer": layer, "concept": name, **T.summarize(scores, accuracy, p, tests, alpha)})
        settings["run_scores"][f"{layer}/{name}"] = [round(float(v), 6) for v in scores]
        bar.advance(1)
    return rows


@register_technique("tcav", example={"concepts": [["skimage:brick", "skimage:grass", "skimage:gravel", "skimage:moon"]],
                                     "random": _SMALL, "inputs": ["skimage:chelsea", "skimage:coffee"], "target": 285,
                                     "layers": ["_blocks.3"], "runs": 2, "nulls": 3, "size": 48, "progress": False})
def tcav(model: ModelLike = DEFAULT_MODEL, concepts: Union[list, dict, str, None] = None,
         random: Union[ImageSet, None] = None, inputs: Union[ImageSet, None] = None,
         target: Union[int, str, None] = None, layers: Union[list[str], str, None] = None, *, runs: int = 20,
         nulls: Union[int, None] = None, alpha: float = 0.05, size: int = 224, seed: int = 0, batch: int = 16,
         cache: Union[str, os.PathLike, None] = None, progress: bool = True) -> Result:
    """TCAV scores of ``concepts`` (folders, named by the folder; (N, 3, H, W) tensors or lists of
    images, named ``concept<i>``; or a dict {name: images}) for class ``target`` at ``layers``,
    against ``random`` images, over ``inputs`` (images of the class), all read at ``size`` px square.

    ``runs`` CAVs per concept and layer (a half of the concept images against as many random ones);
    significance against ``nulls`` null concepts drawn from the random images (default: enough for
    the Bonferroni correction over concepts × layers at ``alpha``). ``info["rows"]``: one dict per
    layer and concept with ``layer, concept, score, std, p_value`` (Bonferroni-corrected),
    ``significant`` (bool) and ``cav_accuracy`` (held out). ``cache``: a folder for the CAVs.
    The picture: each concept's first image captioned with its score per layer (* significant)."""
    _check(runs, alpha, size, nulls, target)
    m = load_model(model)
    layers = _layers(m, layers)
    target = as_target(target, m)
    sets, rand, xs, skipped, notes = _read_all(m, _named(concepts), random, inputs, size, seed)
    tests = len(sets) * len(layers)
    nulls = nulls or T.default_nulls(tests, alpha)
    if tests / (nulls + 1) >= alpha:
        notes.append(f"with {nulls} null concepts and {tests} tests no corrected p-value can fall under {alpha}; "
                     f"raise nulls to at least {T.default_nulls(tests, alpha)}")
    base = _key(_fingerprint(m), size, runs, seed, T.RIDGE, _digest(rand))
    keys = {(layer, n): _key(base, layer, _digest(imgs)) for layer in layers for n, imgs in sets.items()}
    got = {k: _cached(_cache_path(cache, *k), key) for k, key in keys.items()}
    need = [n for n in sets if any(got[(layer, n)] is None for layer in layers)]
    total = len(rand) + sum(len(sets[n]) for n in need) + len(xs)
    with progress_bar(total, "tcav: activations", unit="img", enabled=progress) as bar:
        acts_r = _flat_passes(m, rand, layers, batch, bar)
        acts_c = {n: _flat_passes(m, sets[n], layers, batch, bar) for n in need}
        grads = _flat_passes(m, xs, layers, batch, bar, target)
    settings = {"runs": runs, "seed": seed, "nulls": nulls, "tests": tests, "alpha": alpha, "cache": cache,
                "keys": keys, "run_scores": {}}
    rows = []
    with progress_bar(tests, "tcav: CAVs and null", unit="test", enabled=progress) as bar:
        for layer in layers:
            rows += _test_layer(layer, sets, acts_r, acts_c, grads, got, settings, bar)
    thumbs = torch.cat([resize(imgs[:1], (96, 96)) for imgs in sets.values()])
    labels = [f"{n}: " + " ".join(f"{r['score']:.2f}{'*' if r['significant'] else ''}" for r in rows
                                  if r["concept"] == n) for n in sets]
    mean = torch.tensor([sum(r["score"] for r in rows if r["concept"] == n) / len(layers) for n in sets])
    info = {"rows": rows, "model": m.name, "target": target.name, "layers": layers, "runs": runs, "nulls": nulls,
            "alpha": alpha, "tests": tests, "run_scores": settings["run_scores"],
            "images": {"random": len(rand), "inputs": len(xs), **{n: len(v) for n, v in sets.items()}},
            "reused": sorted({n for (_, n), v in got.items() if v is not None}), "notes": notes,
            "skipped": [[str(p), why] for p, why in skipped]}
    if skipped:
        info["notes"].append(skipped_note(skipped))
    return Result(images=thumbs, scores=mean, labels=labels, figure=make_grid(thumbs, labels),
                  objective=f"tcav({target.name})", info=info)
