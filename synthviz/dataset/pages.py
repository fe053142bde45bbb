"""Unit pages: for each unit of an index, its feature visualization, its top patches (the receptive
field around the maximum), its activation maps over the top images and the histogram of its
activation over the dataset, side by side. Plain HTML with relative links that opens from disk.

``write_unit_pages(run, out)`` writes ``out/units/index.html`` and ``out/units/<layer>/<unit>.html``
(pictures beside them) and returns the links; ``link_from_page(page, links)`` adds a link to the
unit index to an existing page (the gallery's ``index.html``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..html import escape as _e
from ..html import href as _href
from ..html import page
from ..io import encode_image, resize, write_file
from ..layers import parse_units
from ..models import load_model
from ..recipes import visualize
from .dissect import label_source, read_labels
from .maps import overlay, unit_maps
from .run import Run, open_run

# the unit pages' own rules on top of synthviz.html.CSS: compact headings and thumbnails, two columns
CSS = """
h2{margin:1em 0 .3em;font-size:1.1em;border-bottom:0}.row{display:flex;flex-wrap:wrap;gap:16px}
.col{flex:1 1 300px}.grid{gap:6px}figure{padding:3px}figcaption{font-size:11px;color:#333}
svg{background:#fff;border:1px solid #ddd}
"""


def _page(title: str, body: list[str]) -> str:
    return page(title, body, CSS)


def histogram_svg(values: np.ndarray, marks: list[float] = (), bins: int = 40, width: int = 360, height: int = 120) -> str:
    """An inline SVG histogram of ``values`` (NaN ignored), with ``marks`` (the top values) as ticks."""
    v = values[np.isfinite(values)]
    if not len(v):
        return "<p>no values</p>"
    lo, hi = float(v.min()), float(v.max())
    hi = hi if hi > lo else lo + 1.0
    counts, _ = np.histogram(v, bins=bins, range=(lo, hi))
    bw, top = width / bins, max(int(counts.max()), 1)
    bars = "".join(f'<rect x="{i * bw:.1f}" y="{height - 14 - c / top * (height - 20):.1f}" width="{bw - 1:.1f}" '
                   f'height="{c / top * (height - 20):.1f}" fill="#4a7ab5"><title>{c}</title></rect>'
                   for i, c in enumerate(counts))
    ticks = "".join(f'<line x1="{(m - lo) / (hi - lo) * width:.1f}" x2="{(m - lo) / (hi - lo) * width:.1f}" '
                    f'y1="{height - 14}" y2="{height - 8}" stroke="#c33"/>' for m in marks)
    labels = (f'<text x="2" y="{height - 1}" font-size="10">{lo:.3g}</text>'
              f'<text x="{width - 2}" y="{height - 1}" font-size="10" text-anchor="end">{hi:.3g}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
            f'aria-label="activation histogram">{bars}{ticks}{labels}</svg>')


def _feature_visualizations(run: Run, model, layer: str, units: list[int], size: int, steps: int) -> torch.Tensor:
    """(U, 3, size, size): one lucid render per unit, batched."""
    from ..objectives import channel

    objective = sum(channel(layer, u, batch=i) for i, u in enumerate(units))
    return visualize(model, objective, batch=len(units), size=size, steps=steps).images


PATCH_HEADINGS = {"map": "receptive field around the maximum",
                  "tokens": "the image patch of the token at the maximum; a class token stands for the whole image",
                  "vector": "the whole image: the layer has no positions"}


def _kind(run: Run, layer: str) -> str:
    info = run.manifest["layers"][layer]
    return "map" if len(info["shape"]) == 3 else "tokens" if "tokens" in info else "vector"


def _write_png(path: Path, image: torch.Tensor) -> None:
    write_file(path, encode_image(image), overwrite=True)


def write_unit_pages(run: str | os.PathLike | Run, out: str | os.PathLike, *, layers: list[str] | None = None,
                     units: dict[str, list[int]] | list[int] | None = None, viz_steps: int = 128, viz_size: int = 128,
                     thumb: int = 96, model=None, home: str | None = None, facets: int = 0) -> list[dict]:
    """Write a page per unit into ``out/units/`` and ``out/units/index.html`` listing them.

    Args:
        layers: layers of the index to cover (default all).
        units: unit numbers (per layer as a dict, or one list for all; default the first 8).
        viz_steps, viz_size: the feature visualization's render (0 steps: no rendering). An
            existing rendering is kept, so re-running only renders new units.
        home: a page (relative to ``out``) the unit index links back to, e.g. ``index.html``.
        facets: also render this many facets per unit (multifaceted feature visualization: one
            render per cluster of the unit's top images, started from the cluster's mean image).

    Returns one ``{"layer", "unit", "href"}`` per page (``href`` relative to ``out``), the unit
    index first with ``unit`` None.
    """
    run = open_run(run)
    out = Path(out)
    m = load_model(model if model is not None else run.model, run.settings["weights"])
    links: list[dict] = [{"layer": None, "unit": None, "href": "units/index.html"}]
    labels, source = read_labels(run), label_source(run)  # `synthviz label`'s labels, when the run has them
    listing: list[str] = []
    for layer in layers or run.layers:
        layer = run.check_layer(layer)
        chosen = units.get(layer) if isinstance(units, dict) else units
        chosen = list(range(min(8, run.channels(layer)))) if chosen is None else list(chosen)
        folder = out / "units" / layer
        folder.mkdir(parents=True, exist_ok=True)
        todo = [u for u in chosen if viz_steps > 0 and not (folder / str(u) / "viz.png").exists()]
        if todo:
            for u, im in zip(todo, _feature_visualizations(run, m, layer, todo, viz_size, viz_steps)):
                _write_png(folder / str(u) / "viz.png", im)
        for u in chosen if facets and viz_steps > 0 else ():
            if not (folder / str(u) / "facet-1.png").exists() and len(run.top_examples(layer, u)) >= facets:
                from .facets import render_facets

                rendered = render_facets(run, layer, u, facets, model=m, size=viz_size, steps=viz_steps)[0]
                for i, im in enumerate(rendered.images, 1):
                    _write_png(folder / str(u) / f"facet-{i}.png", im)
        feats = run.features(layer)
        stats = run.stats(layer)
        listing.append(f"<h2>{_e(layer)}</h2><div class=\"grid\">")
        for unit in chosen:
            label = labels.get((layer, unit), "")
            _unit_page(run, m, layer, unit, folder, np.asarray(feats[:, unit]), stats, thumb, viz_steps > 0, label,
                       source)
            links.append({"layer": layer, "unit": unit, "href": f"units/{layer}/{unit}.html"})
            img = f'<img src="{_href(f"{layer}/{unit}/viz.png")}" width="{thumb}" height="{thumb}" alt="">' \
                if (folder / str(unit) / "viz.png").exists() else \
                f'<img src="{_href(f"{layer}/{unit}/patch-1.png")}" width="{thumb}" height="{thumb}" alt="">'
            listing.append(f'<figure><a href="{_href(f"{layer}/{unit}.html")}">{img}</a>'
                           f"<figcaption>unit {unit}{_e(' · ' + label) if label else ''}</figcaption></figure>")
        listing.append("</div>")
    back = [f'<p><a href="{_href("../" + home)}">back to the gallery</a></p>'] if home else []
    head = [f"<h1>Units of {_e(run.model)}</h1>",
            f'<p class="meta">{len(run.paths)} images from {_e(run.manifest["dataset"])}, size {run.size}, '
            f'reduce {_e(run.settings["reduce"])}</p>']
    write_file(out / "units" / "index.html", _page(f"units of {run.model}", head + back + listing), overwrite=True)
    return links


def _unit_page(run: Run, model, layer: str, unit: int, folder: Path, values: np.ndarray, stats, thumb: int,
               with_viz: bool, label: str = "", source: str = "Network Dissection") -> None:
    pics = folder / str(unit)
    pics.mkdir(parents=True, exist_ok=True)
    examples = run.top_examples(layer, unit)
    images = torch.stack([run.image(e.index) for e in examples]) if examples else torch.empty(0, 3, run.size, run.size)
    maps = unit_maps(model, layer, images, unit) if len(examples) else None
    patches, overlays = [], []
    for rank, (e, image) in enumerate(zip(examples, images), 1):
        top, left, bottom, right = e.box
        _write_png(pics / f"patch-{rank}.png", resize(image[None, :, top:bottom, left:right], (thumb, thumb))[0])
        caption = f"#{rank} {e.value:.3g} {Path(e.path).name}" + (" · class token (whole image)" if e.token is not None
                                                                   and e.region.startswith("class token") else "")
        patches.append(f'<figure><img src="{_href(f"{unit}/patch-{rank}.png")}" width="{thumb}" height="{thumb}" '
                       f'alt="{_e(caption)}"><figcaption>{_e(caption)}</figcaption></figure>')
        if maps is not None:
            _write_png(pics / f"map-{rank}.png", resize(overlay(image, maps[rank - 1])[None], (thumb, thumb))[0])
            overlays.append(f'<figure><img src="{_href(f"{unit}/map-{rank}.png")}" width="{thumb}" height="{thumb}" '
                            f'alt="map {rank}"><figcaption>#{rank}</figcaption></figure>')
    viz = (f'<figure><img src="{_href(f"{unit}/viz.png")}" width="{2 * thumb}" height="{2 * thumb}" alt="feature '
           f'visualization"><figcaption>feature visualization</figcaption></figure>') if with_viz else "<p>not rendered</p>"
    viz += "".join(f'<figure><img src="{_href(f"{unit}/{p.name}")}" width="{thumb}" height="{thumb}" alt="{p.stem}">'
                   f"<figcaption>{p.stem.replace('-', ' ')}</figcaption></figure>"
                   for p in sorted(pics.glob("facet-*.png")))
    viz = f'<div class="grid">{viz}</div>'
    std = float(stats.std[unit])
    body = [
        f'<p><a href="../index.html">all units</a></p><h1>{_e(layer)} unit {unit}</h1>',
        f'<p class="label">label: <b>{_e(label)}</b> ({_e(source)})</p>' if label else "",
        f'<p class="meta">mean {float(stats.mean[unit]):.4g} · std {std:.4g} · max {float(stats.top_v[unit, 0]):.4g} '
        f'over {int(stats.count)} images ({_e(run.settings["reduce"])} over positions)</p>',
        '<div class="row">', f'<div class="col"><h2>Feature visualization</h2>{viz}</div>',
        '<div class="col"><h2>Activation over the dataset</h2>'
        + histogram_svg(values, [e.value for e in examples]) + "</div></div>",
        f"<h2>Top patches ({_e(PATCH_HEADINGS[_kind(run, layer)])})</h2>", '<div class="grid">', *patches, "</div>",
        "<h2>Activation maps over the top images</h2>", '<div class="grid">', *overlays, "</div>",
        *_relmax_section(run, layer, unit, pics, thumb),
    ]
    write_file(folder / f"{unit}.html", _page(f"{layer} unit {unit}", body), overwrite=True)


def _relmax_section(run: Run, layer: str, unit: int, pics: Path, thumb: int) -> list[str]:
    """The unit's RelMax images (``synthviz index --relevance CLASS``): its top images by its CRP
    relevance for the class, beside the ActMax patches above; nothing for a run without relevances."""
    if run.relevance is None:
        return []
    figures = []
    for rank, e in enumerate(run.top_examples(layer, unit, relevance=True), 1):
        top, left, bottom, right = e.box
        image = run.image(e.index)[None, :, top:bottom, left:right]
        _write_png(pics / f"relmax-{rank}.png", resize(image, (thumb, thumb))[0])
        caption = f"#{rank} {e.value:.3g} {Path(e.path).name}"
        figures.append(f'<figure><img src="{_href(f"{unit}/relmax-{rank}.png")}" width="{thumb}" height="{thumb}" '
                       f'alt="{_e(caption)}"><figcaption>{_e(caption)}</figcaption></figure>')
    name = run.relevance.get("name") or str(run.relevance["class"])
    return [f"<h2>Top patches by relevance for {_e(name)} (RelMax)</h2>",
            '<p class="meta">ranked by the unit\'s share of the class\'s CRP relevance at the layer, not by its '
            "activation: an image it fires on without feeding the class ranks low here</p>",
            '<div class="grid">', *figures, "</div>"]


def link_from_page(page: str | os.PathLike, links: list[dict], title: str = "Units") -> None:
    """Add (or replace) a section linking to the unit index at the end of an existing HTML page."""
    page = Path(page)
    text = page.read_text(encoding="utf-8")
    start, end = "<!-- synthviz:units -->", "<!-- /synthviz:units -->"
    if start in text:
        text = text[: text.index(start)] + text[text.index(end) + len(end):]
    index = next(link["href"] for link in links if link["unit"] is None)
    pages = sum(1 for link in links if link["unit"] is not None)
    section = (f'{start}<section id="units"><h2>{_e(title)}</h2><p><a href="{_href(index)}">'
               f"{pages} unit pages</a>: top patches, activation maps and histograms from a dataset index</p></section>{end}")
    text = text.replace("</body>", section + "</body>", 1) if "</body>" in text else text + section
    write_file(page, text, overwrite=True)


def add_unit_pages(run: str | os.PathLike | Run, gallery: str | os.PathLike, units: str | None = None,
                   viz_steps: int = 128, viz_size: int = 128, facets: int = 0) -> Path:
    """The gallery hook: unit pages for ``run`` under ``gallery/units/``, linked from
    ``gallery/index.html``. ``units``: ``"0-7"``, ``"0,3,5"`` or ``"all"`` for every indexed layer.
    Returns the unit index page."""
    run = open_run(run)
    gallery = Path(gallery)
    chosen = None if units is None else {layer: parse_units(units, run.channels(layer)) for layer in run.layers}
    links = write_unit_pages(run, gallery, units=chosen, viz_steps=viz_steps, viz_size=viz_size, facets=facets,
                             home="index.html" if (gallery / "index.html").exists() else None)
    if (gallery / "index.html").exists():
        link_from_page(gallery / "index.html", links)
    return gallery / links[0]["href"]
