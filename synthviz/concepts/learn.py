"""Learning a dictionary of concepts over a dataset: :func:`learn` (``synthviz concepts``).

The run folder, resumed by the same call until it is complete::

    manifest.json      settings, the layer's shape, the stage reached ("collect", "fit", "encode", "complete")
    images.csv         index,path,label: row i of every array is image i
    dictionary.pt      weights only: method, layer, model name, dictionary (K, C), encoder
    concepts.csv       concept,rank,path,value: each concept's top images (value: the largest coefficient)
    importance.csv     class,concept,importance: CRAFT's total Sobol index (NMF; :mod:`synthviz.concepts.importance`)
                       on up to ``sobol_images`` images predicted as the class, or gradient × coefficient (SAEs)
                       over every image predicted as the class; the mean over those images
    metrics.json       r2 (of the reconstruction, over every position), dead_fraction, l0 (codes used per position)
    skipped.txt        path<TAB>reason of each image that could not be read
    index.html         a page per concept (pages/concept-<k>.html): top images with its heatmap, its render, importance
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch

from ..checks import choice, positive
from ..cost import check_size
from ..dataset.outputs import write_skipped
from ..dataset.sources import find_images
from ..dataset.state import damaged, images_csv, read_manifest
from ..errors import BadImage, BadValue, SynthvizError
from ..io import atomic_write, claim_folder, skipped_note
from ..layers import capture, default_layer, view_of
from ..models import DEFAULT_MODEL, Model, load_model
from .dictionary import Dictionary, get_method, importance_rule, method_names
from .hyper import SAE_DEFAULTS, TUNED, SAEHyper
from .importance import SOBOL_IMAGES, sobol_pass
from .outputs import write_outputs
from .stream import RUN, collect, encode, positions
from .train import sample_rows, train_sae

FORMAT = 1
NMF_SAMPLES = 100_000  # positions an NMF is fitted on (evenly spaced); every image is encoded after
NMF_VALUES = 25_000_000  # ... and at most this many values (positions x channels): 100 MB of float32 for a wide layer
IMPORTANCE = ("gradient", "sobol")  # how importance.csv is computed
RESULTS = ("concepts.csv", "dictionary.pt", "metrics.json", "importance.csv", "index.html")
STAGES = ("collect", "fit", "encode", "complete")


def check_options(method: str, concepts: int, k: int | None, size: int, epochs: int, batch_size: int,
                  top: int, ray: str | None) -> int | None:
    """The options of :func:`learn`, checked before anything is read; returns the TopK ``k``."""
    choice("method", method, method_names())
    positive("concepts", concepts, integer=True)
    positive("k", k, integer=True)
    positive("epochs", epochs, integer=True)
    positive("batch_size", batch_size, integer=True)
    positive("top", top, integer=True)
    if positive("size", size, integer=True) < 8:
        raise BadValue(f"size must be at least 8, not {size}")
    if ray is not None and not str(ray).strip():
        raise BadValue("--ray needs auto, local or a cluster address (ray://HOST:10001)")
    if k is not None and k > concepts:
        raise BadValue(f"k ({k}) cannot exceed the number of concepts ({concepts}); use --k {concepts} or fewer")
    return k if k is not None else max(1, concepts // 4)


def _start(out: Path, settings: dict, source, overwrite: bool) -> dict:
    """A fresh manifest, or the one an unfinished run with the same settings left (resumed)."""
    old = None if overwrite else read_manifest(out, kind=RUN)
    if old is not None:
        recorded = _comparable(old["settings"])
        if recorded != settings:
            diff = [k for k in settings if (recorded or {}).get(k) != settings[k]]
            raise SynthvizError(f"{out} holds a concepts run made with other settings ({', '.join(diff) or 'format'}); "
                                "choose another --out or pass --overwrite")
        try:
            listed = (out / "images.csv").read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            raise damaged(out, "images.csv is missing or cannot be read", kind=RUN) from None
        if listed != images_csv(source):
            raise SynthvizError(f"{out} holds a concepts run of other images; choose another --out or pass --overwrite")
        return old
    if not overwrite and any(p.name != ".claim" and not p.name.startswith(".") for p in out.iterdir()):
        raise SynthvizError(f"{out} exists and is not a concepts run; choose another --out or pass --overwrite")
    for name in [*RESULTS, "train.pt", "collect.state.json", "encode.state.json", "sobol.state.json", "skipped.txt"]:
        (out / name).unlink(missing_ok=True)
    for folder in ("pages", "renders"):  # pictures of the run replaced
        shutil.rmtree(out / folder, ignore_errors=True)
    atomic_write(out / "images.csv", images_csv(source))
    manifest = {"settings": settings, "stage": "collect"}
    atomic_write(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest


def _stage(out: Path, manifest: dict, stage: str, **extra) -> None:
    manifest.update(stage=stage, **extra)
    atomic_write(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")


def layer_samples(model: Model, layer: str, size: int) -> tuple[int, int]:
    """(positions per image, channels) of ``layer``'s view at ``size`` px."""
    probe = torch.zeros(1, 3, size, size, device=model.device)
    raw = capture(model, probe, [layer])[layer]
    return tuple(positions(view_of(model, layer, raw, (size, size))).shape[1:])


def fit(method: str, acts: np.ndarray, rows: np.ndarray, concepts: int, k: int, *, batch_size: int,
        hyper: SAEHyper, seed: int, out: Path, progress: bool, checkpoint_every: float, on_step=None):
    """(atoms, bias, scale, encoder state, facts) of ``method`` fitted on rows ``rows`` of ``acts`` (S, C);
    an SAE trains with ``hyper`` in steps of ``hyper.positions_per_image_batch · batch_size`` positions."""
    m = get_method(method)
    if m.kind == "nmf":
        x = sample_rows(acts, rows, min(NMF_SAMPLES, max(10_000, NMF_VALUES // acts.shape[1])))
        atoms, facts = m.fn(x, concepts, seed)
        facts.update(channels=acts.shape[1], concepts=concepts, samples=len(x))
        return atoms, torch.zeros(acts.shape[1]), 1.0, {}, facts
    net, scale, facts = train_sae(m, acts, rows, concepts, k, batch_size=batch_size * hyper.positions_per_image_batch,
                                  seed=seed, checkpoint=out / "train.pt", checkpoint_every=checkpoint_every,
                                  progress=progress, on_step=on_step, hyper=hyper)
    with torch.no_grad():
        atoms = net.dictionary().detach().clone()
    facts.update(epochs=hyper.epochs, lr=hyper.learning_rate)
    return atoms, net.bias.detach().clone(), scale, net.state_dict(), facts


def learn(dataset: str | os.PathLike, out: str | os.PathLike = "concepts", *,
          model: str | Model | torch.nn.Module = DEFAULT_MODEL, weights: str = "default", layer: str | None = None,
          method: str = "nmf", concepts: int = 8, k: int | None = None, size: int = 224, batch_size: int = 32,
          epochs: int = SAE_DEFAULTS.epochs, lr: float = SAE_DEFAULTS.learning_rate,
          l1: float = SAE_DEFAULTS.l1_weight, l0: float = SAE_DEFAULTS.l0_weight,
          delta: float = SAE_DEFAULTS.archetypal_delta, sae: SAEHyper | None = None, top: int = 16, seed: int = 0, workers: int | None = None,
          device: str | None = None, ray: str | None = None, overwrite: bool = False, progress: bool = True,
          render: bool = False, render_steps: int | None = None, render_size: int = 128,
          keep_activations: bool = False, pages: bool = True, checkpoint_every: float = 30.0, on_batch=None,
          on_step=None, importance: str | None = None, sobol_images: int | None = None) -> Path:
    """Learn ``concepts`` concepts of ``layer`` over ``dataset`` with ``method`` into the folder ``out``.

    Args:
        method: ``nmf``, ``sae``, ``topk``, ``batchtopk``, ``jumprelu`` or ``archetypal`` (see
            :mod:`synthviz.concepts.registry`); ``k``: the active codes of the TopK variants (default K/4).
        size: images resized to ``size`` x ``size``; every position of the layer is a sample.
        epochs, lr: SAE training (Adam; batches of ``8 · batch_size`` positions).
        l1: the ``sae`` method's L1 weight; l0: ``jumprelu``'s L0 weight; delta: ``archetypal``'s bound
            on the relaxation of an atom (inputs are scaled to unit RMS: the same values suit every layer).
        sae: every SAE hyper-parameter at once (:class:`~synthviz.concepts.hyper.SAEHyper`); the
            options above, where they differ from the defaults, override its values.
        top: top images kept per concept (``concepts.csv`` and the pages).
        render: also render every concept (feature visualization of its direction) for the pages.
        keep_activations: keep ``collect-activations.npy`` (N·h·w, C) after the run.
        pages: write ``index.html`` and the concept pages (False: the plain files only).
        ray: run the activation, encoding (and Sobol) passes on Ray Data (``"auto"``, ``"local"`` or a
            cluster address), as :func:`synthviz.dataset.index` does; the same arrays as a local pass.
            ``workers`` is then unused.
        on_batch, on_step: called after each image batch / training step (tests use them to interrupt).
        importance: ``sobol`` (CRAFT's total Sobol indices of the class score over the concept
            coefficients, estimated per class on the images predicted as it:
            :mod:`synthviz.concepts.importance`) or ``gradient`` (gradient × coefficient, every image).
            None: the method's rule (sobol for NMF, gradient for SAEs), or, resuming an unfinished run,
            what the run recorded (gradient for runs made before the option).
        sobol_images: with sobol, the images per predicted class it is estimated on (default 16; 0:
            every image of the class); each costs 32 · (K + 2) forward passes.

    Returns the run folder. Re-running the same call resumes an unfinished run; a finished one is
    refused unless ``overwrite``. Unreadable images are skipped and listed in ``skipped.txt``.
    """
    k = check_options(method, concepts, k, size, epochs, batch_size, top, ray)
    out = Path(out)
    importance, sobol_images = _importance(out, overwrite, method, importance, sobol_images)
    hyper = _hyper(sae, epochs=epochs, lr=lr, l1=l1, l0=l0, delta=delta)
    source = find_images(dataset)
    with claim_folder(out, holds=["concepts.csv"], overwrite=overwrite, what="a finished concepts run"):
        m = load_model(model, weights, device)
        check_size(m, size)
        layer = layer or default_layer(m, "mid")
        settings = {"format": FORMAT, "model": m.name, "weights": str(weights), "layer": layer, "method": method,
                    "concepts": concepts, "k": k, "size": size, "batch_size": batch_size,
                    "epochs": hyper.epochs, "lr": hyper.learning_rate, "seed": seed}
        manifest = _start(out, _recorded(settings, hyper, importance, sobol_images), source, overwrite)
        shape = layer_samples(m, layer, size)
        common = {"size": size, "batch_size": batch_size, "workers": workers, "progress": progress,
                  "checkpoint_every": checkpoint_every, "on_batch": on_batch, "ray": ray}
        with _ray(ray):  # one Ray session (cluster.ray_session) for every pass
            gathered = collect(out, source, m, layer, shape, fresh=False, **common)
            _refuse_empty(gathered, source, dataset)
            acts = gathered.arrays["activations"]
            rows = np.flatnonzero(~np.isnan(acts[:, 0]))
            if manifest["stage"] in ("collect", "fit"):
                _stage(out, manifest, "fit", samples=shape[0], channels=shape[1])
                atoms, bias, scale, encoder, facts = fit(method, acts, rows, concepts, k, hyper=hyper,
                                                         batch_size=batch_size, seed=seed, out=out,
                                                         progress=progress, checkpoint_every=checkpoint_every,
                                                         on_step=on_step)
                facts.update(size=size, positions=shape[0])
                Dictionary(method, layer, m.name, atoms, bias, scale, encoder, facts).save(out / "dictionary.pt")
                _stage(out, manifest, "encode")
            dictionary = Dictionary.load(out / "dictionary.pt")
            coded = encode(out, source, m, dictionary, fresh=False, importance=importance, seed=seed, **common)
            passes, arrays = [gathered, coded], dict(coded.arrays)
            if importance == "sobol":  # CRAFT's indices on up to sobol_images images of each predicted class
                scored = sobol_pass(out, source, m, dictionary, np.asarray(coded.arrays["classes"]),
                                    per_class=sobol_images, fresh=False, seed=seed, **common)
                passes.append(scored)
                arrays["share"] = scored.arrays["share"]
        write_skipped(out, source, sorted(set(gathered.skipped) | set(coded.skipped)))
        write_outputs(out, source, m, dictionary, acts, rows, arrays, top=top, importance=importance,
                      sobol_images=sobol_images)
        if render:
            from .pictures import render_concepts

            render_concepts(out, model=m, steps=render_steps, size=render_size, progress=progress)
        if pages:
            from .pages import write_pages

            write_pages(out, model=m)
        _stage(out, manifest, "complete")
        for state in passes:
            state.finish()
        (out / "train.pt").unlink(missing_ok=True)
        if not keep_activations:
            del acts, gathered, arrays, passes
            for name in ("collect-activations.npy", "encode-share.npy", "encode-classes.npy", "encode-best.npy",
                         "sobol-share.npy"):
                (out / name).unlink(missing_ok=True)
    return out


def _recorded(settings: dict, hyper: SAEHyper, importance: str, sobol_images: int | None) -> dict:
    """``settings`` with the SAE values that differ from the defaults (absent at the defaults: runs
    made before these options still resume) and the importance (runs made before it: see :func:`_comparable`)."""
    extra = {key: v for key, v in hyper.changed().items() if key not in ("epochs", "learning_rate")}
    if extra:
        settings["sae"] = extra
    settings["importance"] = importance
    if importance == "sobol":
        settings["sobol_images"] = sobol_images
    return settings


def _importance(out: Path, overwrite: bool, method: str, importance: str | None,
                sobol_images: int | None) -> tuple[str, int | None]:
    """The importance of a run and, for sobol, its images per class: those given, else what an
    unfinished run in ``out`` recorded (resumed as it was made), else the method's rule and 16."""
    from ..checks import non_negative

    recorded = None
    if not overwrite and (out / "manifest.json").exists() and not (out / "concepts.csv").exists():
        with contextlib.suppress(OSError, ValueError, AttributeError):
            recorded = _comparable(json.loads((out / "manifest.json").read_text(encoding="utf-8")).get("settings"))
    if importance is None:
        importance = recorded["importance"] if recorded else importance_rule(method)
    choice("importance", importance, IMPORTANCE)
    if importance != "sobol":
        return importance, None
    if sobol_images is None:
        same = recorded and recorded.get("importance") == "sobol"
        sobol_images = recorded["sobol_images"] if same else SOBOL_IMAGES
    return importance, non_negative("sobol_images", sobol_images, integer=True)


def _comparable(settings: dict | None) -> dict | None:
    """Recorded settings in today's form: a run made before ``importance`` was recorded used gradient;
    a sobol run made before ``sobol_images`` estimated on every image (0)."""
    if not isinstance(settings, dict):
        return settings
    settings = {**settings, "importance": settings.get("importance", "gradient")}
    if settings["importance"] == "sobol":
        settings.setdefault("sobol_images", 0)
    return settings


def _ray(address: str | None):
    """The Ray session every pass shares (:func:`synthviz.cluster.ray_session`), or nothing without ``address``."""
    if address is None:
        return contextlib.nullcontext()
    from ..cluster import ray_session

    return ray_session(address, data=True)


def _hyper(sae: SAEHyper | None, **options) -> SAEHyper:
    """``sae`` (default :data:`SAE_DEFAULTS`) with the options of :func:`learn` that differ from the
    defaults (``lr``, ``epochs``, ``l1``, ``l0``, ``delta``: see :data:`~synthviz.concepts.hyper.TUNED`)."""
    base = SAE_DEFAULTS if sae is None else sae
    values = {TUNED[name]: v for name, v in options.items() if v != getattr(SAE_DEFAULTS, TUNED[name])}
    return base.with_values(**values)


def _refuse_empty(state, source, dataset) -> None:
    """A pass that read no image is an error listing why (and the list in ``skipped.txt``)."""
    if len(state.skipped) < len(source):
        return
    skipped = [(source.paths[i], reason) for i, reason in sorted(state.skipped)]
    write_skipped(state.out, source, state.skipped)
    state.path.unlink(missing_ok=True)
    raise BadImage(f"no image of {dataset} could be read: {skipped_note(skipped, limit=3)}; "
                   f"all listed in {state.out / 'skipped.txt'}; use PNG or JPEG files the model can read")

