"""``synthviz concepts`` (learn a dictionary of concepts over a dataset), ``concepts-render`` (draw
a run's concepts) and ``concept-map`` (an image decomposed into a run's concepts)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from ..model_zoo import model_help
from ..models import DEFAULT_MODEL
from .app import app
from .common import ClassOpt, DeviceOpt, ModelOpt, OverwriteOpt, SeedOpt, WeightsOpt, command, say

# --model of a command on a run: the generated description, default the run's own model
RunModelOpt = Annotated[Optional[str], typer.Option("--model", "-m", help=escape(model_help()) + " Default: the model the run was learnt on.")]
RunArg = Annotated[Path, typer.Argument(help="A concepts run folder made by `synthviz concepts`.")]
# the SAE options' defaults are synthviz.concepts.hyper.SAE_DEFAULTS' (written out: the CLI loads fast)
METHODS = "nmf (semi-NMF where the layer has negative values), sae (ReLU + L1), topk, batchtopk, jumprelu, archetypal."


@command(app, "concepts")
def concepts_cmd(
    dataset: Annotated[str, typer.Argument(help="A folder of images (searched recursively), a glob in quotes, or a .txt/.csv list of paths.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder (resumed if it holds an unfinished run).")] = Path("concepts"),
    layer: Annotated[Optional[str], typer.Option("--layer", "-l", help="Layer whose activations are decomposed (default: the model's mid layer).")] = None,
    method: Annotated[str, typer.Option(help=METHODS)] = "nmf",
    concepts: Annotated[int, typer.Option("--concepts", "-K", help="Concepts in the dictionary.")] = 8,
    k: Annotated[Optional[int], typer.Option("--k", help="Active codes per position of the TopK variants (default: concepts / 4).")] = None,
    size: Annotated[int, typer.Option(help="Images are resized to SIZE x SIZE (no cropping).")] = 224,
    epochs: Annotated[int, typer.Option(help="Passes over the activations when training an SAE.")] = 20,
    lr: Annotated[float, typer.Option(help="Adam learning rate of an SAE (inputs are scaled to unit RMS).")] = 3e-3,
    l1: Annotated[float, typer.Option("--l1", help="Weight of the L1 penalty on the codes of the sae method.")] = 0.3,
    l0: Annotated[float, typer.Option("--l0", help="Weight of the L0 penalty (active codes) of the jumprelu method.")] = 1.0,
    delta: Annotated[float, typer.Option("--delta", help="Bound on the norm of an atom's relaxation (archetypal method).")] = 1.0,
    top: Annotated[int, typer.Option(help="Top images kept per concept.")] = 16,
    batch_size: Annotated[int, typer.Option(help="Images per forward pass.")] = 32,
    workers: Annotated[Optional[int], typer.Option(help="Image-reading worker processes (default: the cores less one).")] = None,
    render: Annotated[bool, typer.Option(help="Also render every concept for the pages (feature visualization of its direction).")] = False,
    render_steps: Annotated[Optional[int], typer.Option(help="Steps of each render (default: the recipe's).")] = None,
    ray: Annotated[Optional[str], typer.Option("--ray", help="Run the activation and encoding passes on Ray Data (one model worker per CPU or GPU), as `synthviz index --ray`: auto, local, or an address.")] = None,
    importance: Annotated[Optional[str], typer.Option(help="Concept importance in importance.csv: sobol (CRAFT's total Sobol indices, on --sobol-images images per predicted class; 32·(K+2) forward passes each) or gradient (gradient × coefficient, every image). Default: sobol for nmf, gradient for the SAEs.")] = None,
    sobol_images: Annotated[Optional[int], typer.Option("--sobol-images", help="With sobol importance: images per predicted class the Sobol indices are estimated on (default 16; 0: every image of the class).")] = None,
    model: ModelOpt = DEFAULT_MODEL, weights: WeightsOpt = "default", device: DeviceOpt = "auto",
    seed: SeedOpt = 0, overwrite: OverwriteOpt = False,
) -> None:
    """Learn K concepts of a layer over DATASET: concepts.csv, dictionary.pt, metrics.json, importance.csv, index.html."""
    import json

    from ..concepts import learn

    try:
        run = learn(dataset, out, model=model, weights=weights, layer=layer, method=method, concepts=concepts, k=k,
                    size=size, epochs=epochs, lr=lr, l1=l1, l0=l0, delta=delta, top=top, batch_size=batch_size, workers=workers, device=device,
                    ray=ray, seed=seed, overwrite=overwrite, render=render, render_steps=render_steps,
                    importance=importance, sobol_images=sobol_images)
    except KeyboardInterrupt:
        if (out / "manifest.json").exists():
            say(f"interrupted: progress is kept in {out}; run the same command to resume")
        else:
            say(f"interrupted before the run started: nothing was written to {out}")
        raise typer.Exit(130) from None
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    skipped = [line for line in (run / "skipped.txt").read_text(encoding="utf-8").splitlines() if line]
    say(f"{metrics['concepts']} concepts of {metrics['layer']} ({method}) in {run}: R² {metrics['r2']:.3f}, "
        f"dead {metrics['dead_fraction']:.2f}, L0 {metrics['l0']:.2f}; importance: {metrics['importance']}; "
        f"open {run / 'index.html'}"
        + (f"; {len(skipped)} images skipped, listed in {run / 'skipped.txt'}" if skipped else ""))


@command(app, "concepts-render")
def concepts_render_cmd(
    run: RunArg,
    concepts: Annotated[str, typer.Option("--concepts", help="Concepts to render: 0-7, 1,3,5 or all.")] = "all",
    size: Annotated[int, typer.Option(help="Render side in pixels.")] = 128,
    steps: Annotated[Optional[int], typer.Option(help="Optimization steps (default: the recipe's).")] = None,
    recipe: Annotated[str, typer.Option(help="Feature-visualization recipe: lucid, classic or maco.")] = "lucid",
    cossim_pow: Annotated[float, typer.Option(help="Power of the cosine with the concept direction (0: the plain dot product).")] = 1.0,
    model: RunModelOpt = None,
    seed: SeedOpt = 0,
) -> None:
    """Render concepts of RUN (run/renders/concept-<k>.png) and update its pages."""
    from ..concepts import render_concepts, write_pages

    result = render_concepts(run, concepts, model=model, steps=steps, size=size, recipe=recipe, cossim_pow=cossim_pow,
                             seed=seed, progress=True)
    page = write_pages(run, model=model)
    say(f"rendered {len(result.images)} concepts into {run / 'renders'}; open {page}")


@command(app, "concept-map")
def concept_map_cmd(
    image: Annotated[Path, typer.Argument(help="The photo to decompose.")],
    run: Annotated[Path, typer.Option("--run", help="A concepts run folder made by `synthviz concepts`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output figure (PNG); OUT-concepts.npy holds the maps (K, H, W).")] = Path("concept-map.png"),
    target: ClassOpt = None,
    threshold: Annotated[float, typer.Option(help="A concept is shown when its largest coefficient is at least this fraction of the largest.")] = 0.05,
    importance: Annotated[Optional[str], typer.Option(help="gradient (gradient × coefficient) or sobol (CRAFT's total Sobol indices). Default: sobol for an NMF run, gradient for an SAE.")] = None,
    model: RunModelOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """IMAGE decomposed into RUN's concepts: one heatmap per active concept with its importance for the class."""
    import io

    import numpy as np

    from ..concepts.pictures import concept_map, concept_map_result
    from ..io import IMAGE_SUFFIXES, check_writable, write_file

    check_writable(out, IMAGE_SUFFIXES, [image])
    found = concept_map(run, image, model=model, target=target, threshold=threshold, importance=importance)
    result = concept_map_result(found)
    saved = result.save(out, overwrite)
    buf = io.BytesIO()
    np.save(buf, found["maps"].numpy().astype(np.float32))
    maps = write_file(saved.with_name(f"{saved.stem}-concepts.npy"), buf.getvalue(), overwrite)
    for label in result.labels:
        typer.echo(label)
    say(f"saved {saved} and {maps} ({found['class_name']}; importance: {found['importance_kind']})")
