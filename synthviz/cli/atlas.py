"""Whole-layer views: ``synthviz atlas`` (activation and class atlases of an index), ``synthviz
label`` (Network Dissection labels of its units) and ``synthviz blocks`` (one image's building blocks)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .app import app
from ..models import DEFAULT_MODEL
from .common import ModelOpt, OverwriteOpt, SeedOpt, command, say

RunArg = Annotated[Path, typer.Argument(help="An index folder made by `synthviz index` (for an atlas: with --samples-per-image).")]


@command(app, "atlas")
def atlas_cmd(
    run: RunArg,
    layer: Annotated[Optional[str], typer.Option("--layer", "-l", help="Indexed layer (default: the first one indexed).")] = None,
    grid: Annotated[int, typer.Option(help="Cells per side of the grid.")] = 20,
    out: Annotated[Path, typer.Option("--out", "-o", help="Atlas folder: atlas.png, icons/, cells.csv, cells.npy, samples.csv, index.html.")] = Path("atlas"),
    cls: Annotated[Optional[str], typer.Option("--class", "-c", help="A class atlas: only the samples whose attribution favours this class (index or name).")] = None,
    versus: Annotated[Optional[str], typer.Option("--versus", help="A second class, shown beside --class on the same layout.")] = None,
    min_count: Annotated[int, typer.Option("--min-count", help="Cells with fewer samples are dropped (Lucid's atlases: more than 5); lower it for a small index.")] = 6,
    method: Annotated[str, typer.Option(help="Layout: umap (umap-learn; t-SNE when it is absent), tsne or pca.")] = "umap",
    max_samples: Annotated[int, typer.Option("--max-samples", help="At most this many samples (evenly spaced).")] = 100_000,
    whiten: Annotated[bool, typer.Option(help="Whiten each cell's direction by the samples' covariance.")] = False,
    size: Annotated[int, typer.Option(help="Icon side in pixels.")] = 64,
    steps: Annotated[int, typer.Option(help="Optimization steps per icon.")] = 128,
    batch: Annotated[int, typer.Option(help="Icons rendered together.")] = 16,
    ray: Annotated[Optional[str], typer.Option("--ray", help="Render the icon batches as Ray tasks: auto, local, or an address.")] = None,
    seed: SeedOpt = 0, overwrite: OverwriteOpt = False,
) -> None:
    """An activation atlas of a layer: samples laid out by UMAP, binned on a grid, each cell rendered."""
    from ..techniques.atlas import atlas

    result = atlas(None, run=str(run), layer=layer, out=str(out), grid=grid, target=cls, versus=versus,
                   min_count=min_count, method=method, max_samples=max_samples, whiten=whiten, size=size,
                   steps=steps, batch=batch, seed=seed, overwrite=overwrite, progress=True, ray=ray)
    cells = " + ".join(str(c) for c in result.info["cells"])
    say(f"atlas of {result.info['samples']} samples ({result.info['method']}), {cells} cells: {out / 'index.html'}")


@command(app, "label")
def label_cmd(
    run: Annotated[Path, typer.Argument(help="An index folder made by `synthviz index`.")],
    segmentation: Annotated[Optional[Path], typer.Option("--segmentation", help="Network Dissection: folder of class-id masks (PNG), named like the images (relative to the dataset).")] = None,
    class_names: Annotated[Optional[Path], typer.Option("--class-names", help="Text file: line i names class id i (the first line is id 1; 0 is no class).")] = None,
    clip: Annotated[Optional[str], typer.Option("--clip", help="CLIP-Dissect instead: the CLIP model, open_clip:ARCH[:PRETRAINED].")] = None,
    words: Annotated[Optional[Path], typer.Option("--words", help="CLIP-Dissect: text file of candidate labels, one per line.")] = None,
    clip_weights: Annotated[str, typer.Option("--clip-weights", help="CLIP weights: default (pretrained), random, or a checkpoint.")] = "default",
    layers: Annotated[Optional[str], typer.Option("--layers", help="Indexed layers to label, comma-separated (default: all).")] = None,
    quantile: Annotated[float, typer.Option(help="Network Dissection: each unit's top quantile over the dataset that counts as on.")] = 0.005,
    min_iou: Annotated[float, typer.Option("--min-iou", help="Network Dissection: a unit is labelled when its best IoU reaches this.")] = 0.04,
    top_k: Annotated[int, typer.Option("--top-k", help="CLIP-Dissect: a unit's top images scored.")] = 100,
    overwrite: OverwriteOpt = False,
) -> None:
    """A label per unit into RUN/labels.csv: Network Dissection (--segmentation, --class-names: IoU of the unit's
    top-quantile region with each class's masks) or CLIP-Dissect (--clip, --words: soft-WPMI of its top images)."""
    from ..dataset.dissect import write_labels
    from ..errors import SynthvizError

    if (clip is None) == (segmentation is None) or (clip is None) != (words is None) or \
            (segmentation is None) != (class_names is None):
        raise SynthvizError("give --segmentation with --class-names (Network Dissection) or --clip with --words "
                            "(CLIP-Dissect)")
    if (run / "labels.csv").exists() and not overwrite:
        raise SynthvizError(f"{run / 'labels.csv'} exists; pass --overwrite to replace it")
    chosen = [n.strip() for n in layers.split(",") if n.strip()] if layers else None
    if clip is not None:
        from ..dataset.clipdissect import clip_dissect

        rows = clip_dissect(run, clip, words, layers=chosen, top_k=top_k, weights=clip_weights)
        path = write_labels(run, rows, overwrite, score="score")
        say(f"{len(rows)} units labelled by CLIP-Dissect with {clip}: {path}")
        return
    from ..dataset.dissect import dissect

    rows = dissect(run, segmentation, class_names, layers=chosen, quantile=quantile, min_iou=min_iou, progress=True)
    path = write_labels(run, rows, overwrite)
    labelled = sum(1 for r in rows if r["label"])
    say(f"{labelled} of {len(rows)} units labelled (IoU >= {min_iou}): {path}")


@command(app, "blocks")
def blocks_cmd(
    image: Annotated[str, typer.Argument(help="The photo to explain.")],
    layer: Annotated[Optional[str], typer.Option("--layer", "-l", help="Layer to factorise (default: the model's mid layer).")] = None,
    groups: Annotated[int, typer.Option(help="Neuron groups (NMF components).")] = 6,
    cls: Annotated[Optional[str], typer.Option("--class", "-c", help="Class to attribute to (default: the predicted class).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output stem: OUT.png (maps over group pictures) and OUT.html.")] = Path("blocks"),
    model: ModelOpt = DEFAULT_MODEL,
    size: Annotated[int, typer.Option(help="Side of each group's picture.")] = 64,
    steps: Annotated[int, typer.Option(help="Optimization steps of the pictures.")] = 64,
    image_size: Annotated[int, typer.Option("--image-size", help="The photo's longer side.")] = 224,
    seed: SeedOpt = 0, overwrite: OverwriteOpt = False,
) -> None:
    """Building blocks of IMAGE's decision: neuron groups (NMF), their pictures, maps and attribution; OUT.png and OUT.html."""
    from ..errors import SynthvizError
    from ..techniques.blocks import blocks

    png, page = out.with_suffix(".png"), out.with_suffix(".html")
    for path in (png, page):
        if path.exists() and not overwrite:
            raise SynthvizError(f"{path} exists; pass --overwrite or another --out")
    result = blocks(model, image, layer=layer, groups=groups, target=cls, size=size, steps=steps, image_size=image_size,
                    html=str(page), overwrite=overwrite, seed=seed)
    result.save(png, overwrite)
    say(f"{result.info['class_name']}: " + ", ".join(f"{a:+.3g}" for a in result.info["attribution"]) + f"; {png}, {page}")
