"""``synthviz index`` (probe units over a dataset) and the pictures made from an index:
``neighbours``, ``embed``, ``facets``; ``filters`` shows a model's first-layer filters."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..models import DEFAULT_MODEL
from .app import app
from .common import DeviceOpt, ModelOpt, OverwriteOpt, SeedOpt, WeightsOpt, command, say

RunArg = Annotated[Path, typer.Argument(help="An index folder made by `synthviz index`.")]
# escaped: Typer reads help as rich markup, where "synthviz[embed]" would lose its "[embed]"
METHOD_HELP = r'tsne (openTSNE), pca, or umap (umap-learn); tsne and umap need pip install "synthviz\[embed]".'
LayerOpt = Annotated[Optional[str], typer.Option("--layer", "-l", help="Indexed layer (default: the first one indexed).")]


def _save(result, out: Path, overwrite: bool) -> None:
    from ..io import check_writable, IMAGE_SUFFIXES

    check_writable(out, IMAGE_SUFFIXES)
    say(f"saved {result.save(out, overwrite)}")


@command(app, "index")
def index_cmd(
    dataset: Annotated[str, typer.Argument(help="A folder of images (searched recursively; sub-folders as labels), a glob in quotes, or a .txt/.csv list of paths.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder for the index (resumed if it holds an unfinished one).")] = Path("run"),
    model: ModelOpt = DEFAULT_MODEL, weights: WeightsOpt = "default",
    layers: Annotated[Optional[str], typer.Option("--layers", help="Layers to index, comma-separated (default: the model's mid layer).")] = None,
    size: Annotated[int, typer.Option(help="Images are resized to SIZE x SIZE (no cropping).")] = 224,
    reduce: Annotated[str, typer.Option(help="A channel's value per image: max (over positions) or mean.")] = "max",
    top_k: Annotated[int, typer.Option("--top-k", help="Top (and bottom) examples kept per unit.")] = 16,
    batch_size: Annotated[int, typer.Option(help="Images per forward pass.")] = 32,
    workers: Annotated[Optional[int], typer.Option(help="Image-reading worker processes (default: the cores less one).")] = None,
    ray: Annotated[Optional[str], typer.Option("--ray", help="Run the same pass on Ray Data (one model worker per CPU or GPU): auto, local, or an address.")] = None,
    samples_per_image: Annotated[int, typer.Option("--samples-per-image", help="Also keep the activation vector at N random positions per image and layer, with its attribution to the predicted class (for `synthviz atlas`).")] = 0,
    relevance: Annotated[Optional[str], typer.Option("--relevance", help="A class (index or name): also rank each unit's images by its CRP relevance for the class (RelMax, relmax.csv), shown beside the ActMax images on the unit pages.")] = None,
    device: DeviceOpt = "auto", overwrite: OverwriteOpt = False,
) -> None:
    """Index DATASET: per unit of --layers, its top-k images with patches, mean/std, per-image features."""
    from ..dataset import index
    from ..dataset.run import Run
    from ..dataset.state import progress_kept

    try:
        run = index(dataset, out, model=model, weights=weights, layers=layers, size=size, reduce=reduce, top_k=top_k,
                    batch_size=batch_size, workers=workers, device=device, ray=ray, overwrite=overwrite,
                    samples_per_image=samples_per_image,
                    relevance=int(relevance) if relevance is not None and relevance.isdigit() else relevance)
    except KeyboardInterrupt:
        if progress_kept(out):
            say(f"interrupted: progress is kept in {out}; run the same command to resume")
        else:  # stopped while the model loaded: no run folder was started
            say(f"interrupted before indexing started: nothing was written to {out}")
        raise typer.Exit(130) from None
    r = Run(run)
    skipped = len(r.skipped)
    say(f"indexed {len(r.paths) - skipped} images into {run} ({', '.join(r.layers)})"
        + (f"; {skipped} skipped, listed in {run / 'skipped.txt'}" if skipped else ""))


@command(app, "neighbours")
def neighbours_cmd(
    run: RunArg,
    query: Annotated[str, typer.Argument(help="Query image: a file, or an image number of the index.")],
    layer: LayerOpt = None,
    k: Annotated[int, typer.Option("-k", help="Neighbours to show.")] = 8,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output grid (PNG; a JSON sidecar lists the neighbours).")] = Path("neighbours.png"),
    overwrite: OverwriteOpt = False,
) -> None:
    """The nearest neighbours of QUERY in a layer's feature space (cosine), as a grid."""
    from ..techniques.dataset import neighbours

    result = neighbours(None, int(query) if query.isdigit() else query, run=str(run), layer=layer, k=k)
    for path, sim in zip(result.info["paths"], result.info["similarities"]):
        typer.echo(f"{sim:.4f}  {path}")
    _save(result, out, overwrite)


@command(app, "embed")
def embed_cmd(
    run: RunArg, layer: LayerOpt = None,
    method: Annotated[str, typer.Option(help=METHOD_HELP)] = "tsne",
    max_images: Annotated[int, typer.Option(help="At most this many images (evenly spaced through the index).")] = 1024,
    thumb: Annotated[int, typer.Option(help="Thumbnail side in pixels.")] = 48,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output grid image (PNG).")] = Path("embedding.png"),
    seed: SeedOpt = 0, overwrite: OverwriteOpt = False,
) -> None:
    """A t-SNE (or PCA/UMAP) grid of the indexed images: thumbnails placed by their features, each once."""
    from ..techniques.dataset import embedding

    _save(embedding(None, run=str(run), layer=layer, method=method, max_images=max_images, thumb=thumb, seed=seed),
          out, overwrite)


@command(app, "filters")
def filters_cmd(
    model: ModelOpt = DEFAULT_MODEL, weights: WeightsOpt = "default",
    scale: Annotated[int, typer.Option(help="Pixels per filter weight.")] = 8,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output grid image (PNG).")] = Path("filters.png"),
    overwrite: OverwriteOpt = False,
) -> None:
    """The model's first-layer convolution filters as RGB images."""
    from ..techniques.dataset import filters

    _save(filters(model, weights=weights, scale=scale), out, overwrite)


@command(app, "facets")
def facets_cmd(
    run: RunArg, unit: Annotated[int, typer.Argument(help="Channel of --layer.")], layer: LayerOpt = None,
    facets: Annotated[int, typer.Option(help="Clusters of the unit's top images, one render each.")] = 3,
    size: Annotated[int, typer.Option(help="Render side in pixels.")] = 128,
    steps: Annotated[Optional[int], typer.Option(help="Optimization steps (default: the recipe's).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output figure: starts above renders (PNG).")] = Path("facets.png"),
    seed: SeedOpt = 0, overwrite: OverwriteOpt = False,
) -> None:
    """Multifaceted feature visualization of UNIT: one render per cluster of its top images."""
    from ..techniques.dataset import facets as facets_technique

    result = facets_technique(None, run=str(run), layer=layer, unit=unit, facets=facets, size=size, steps=steps,
                              seed=seed, progress=True)
    _save(result, out, overwrite)
