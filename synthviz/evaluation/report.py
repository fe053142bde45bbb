"""The evaluation written out: ``metrics.csv`` (one row per method and image), ``ranks.csv`` and
``summary.md`` (the methods ranked with bootstrap intervals, :mod:`.ranking`) and ``index.html`` (a
page that opens from disk: the summary table, the ranks, then per image each method's map beside its
deletion and insertion curves, drawn as inline SVG), plus the summary figure of the technique."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from ..html import escape, img, page, table
from ..io import csv_text, encode_image, make_grid, write_file
from ._maps import label, overlay
from .ranking import Ranking, best_per_family, metric_facts, rank, ranks_csv, summary_md
from .run import Evaluation

# which way is better, for the page's table header
BETTER = {"deletion_auc": "low", "insertion_auc": "high", "road_morf": "low", "road_lerf": "high",
          "pointing_game": "high", "iou": "high", "random_top_spearman": "low", "random_top_ssim": "low",
          "random_mid_spearman": "low", "random_mid_ssim": "low", "random_all_spearman": "low",
          "random_all_ssim": "low", "invariance_change": "low", "invariance_spearman": "high",
          "infidelity": "low", "max_sensitivity": "low", "gini": "high", "seconds": "low"}


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if not math.isfinite(value) else f"{value:.6g}"
    return str(value)


def metrics_csv(ev: Evaluation) -> str:
    """The CSV text: header ``ev.columns`` (:data:`~synthviz.evaluation.run.COLUMNS` and one column per
    registered metric scored), one row per method and image."""
    return csv_text(ev.columns, ([_cell(row.get(c)) for c in ev.columns] for row in ev.rows))


def svg_curve(values: list[float], title: str, color: str = "#c0392b", width: int = 220, height: int = 150) -> str:
    """A probability curve over [0, 1] (pixels removed or revealed) as a small inline SVG plot."""
    left, right, top, bottom = 30, 8, 18, 22
    pw, ph = width - left - right, height - top - bottom
    n = len(values)
    pts = " ".join(f"{left + pw * i / (n - 1):.1f},{top + ph * (1 - min(max(v, 0.0), 1.0)):.1f}"
                   for i, v in enumerate(values))
    area = (f"{left},{top + ph} " + pts + f" {left + pw},{top + ph}")
    ticks = "".join(f'<line x1="{left}" x2="{left + pw}" y1="{top + ph * (1 - t):.1f}" y2="{top + ph * (1 - t):.1f}" '
                    f'stroke="#ddd"/><text x="{left - 4}" y="{top + ph * (1 - t) + 3:.1f}" font-size="9" '
                    f'text-anchor="end">{t:g}</text>' for t in (0, 0.5, 1))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">'
            f'<title>{escape(title)}</title>{ticks}'
            f'<polygon points="{area}" fill="{color}" fill-opacity="0.15"/>'
            f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"/>'
            f'<text x="{left}" y="12" font-size="11">{escape(title)}</text>'
            f'<text x="{left + pw / 2}" y="{height - 6}" font-size="9" text-anchor="middle">fraction of pixels</text>'
            f'</svg>')


def _display(method: str) -> str:
    return "positive" if method in ("gradcam", "occlusion") else "abs"


def heatmap(ev: Evaluation, method: str, image: str) -> torch.Tensor:
    """(3, H, W) the map of ``method`` over ``image``."""
    photo = ev.images[image].cpu()
    maps = torch.nan_to_num(ev.maps[(method, image)].cpu())
    return overlay(photo, maps, _display(method))[0]


# the report's own rules on top of synthviz.html.CSS: a method's map beside its two curves
CSS = """
.m{display:flex;gap:12px;align-items:center;margin:6px 0}.m img{width:150px;image-rendering:pixelated}.n{color:#b00}
"""
INTRO = ("Mean over the images. Deletion: area under the target probability as pixels are blurred out, "
         "most relevant first (low is good); insertion: as they are revealed (high is good); ROAD: the same "
         "with noisy linear imputation, most (MoRF) / least (LeRF) relevant first; random_*: similarity of "
         "the map to itself with the top layer, a middle layer or all layers re-initialised (low is good); "
         "invariance: change of the map under a compensated input shift; seconds: cost per image.")


def _method_row(ev: Evaluation, method: str, image: str) -> str:
    """One method on one image: its map, its cost, its deletion and insertion curves, its notes."""
    row = next(r for r in ev.rows if r["method"] == method and r["image"] == image)
    cv = ev.curves.get((method, image))
    plots = ""
    if cv:
        plots = (svg_curve(cv["deletion"], f"deletion AUC {row['deletion_auc']:.3f}") +
                 svg_curve(cv["insertion"], f"insertion AUC {row['insertion_auc']:.3f}", "#2471a3"))
    note = f"<span class='n'>{escape(row['notes'])}</span>" if row["notes"] else ""
    picture = img(encode_image(heatmap(ev, method, image)), f"{label(method)} map")
    return (f"<div class='m'><div><b>{escape(label(method))}</b><br>{picture}<br>{row['seconds']:.2f} s</div>"
            f"{plots}{note}</div>")


def ranks_html(ev: Evaluation, ranking: Ranking) -> list[str]:
    """The ranks section: the best method per family, the random references, the table of ranks."""
    best = best_per_family(ranking)
    lines = "".join(f"<li>{escape(f)}: <b>{escape(m)}</b> (mean rank {r:.2g})</li>" for f, (m, r) in best.items())
    refs = "".join(f"<li>{escape(text)}</li>" for text in ev.references.values())
    rows = [[r["family"], r["metric"], r["method"], _cell(r["mean"]),
             "" if r["low"] is None else f"[{r['low']:.3g}, {r['high']:.3g}]", r["rank"]] for r in ranking.rows]
    return ["<h2>Ranks</h2>", f"<p>Per metric, each method's mean with a 95% bootstrap interval over the "
            f"{ranking.images} image(s); methods whose difference is not distinguishable from 0 share a rank "
            "(summary.md says by how much the best leads).</p>",
            f"<ul>{lines}</ul>" if lines else "", f"<p>Random references:</p><ul>{refs}</ul>" if refs else "",
            table(["family", "metric", "method", "mean", "95% interval", "rank"], rows)]


def index_html(ev: Evaluation, ranking: Ranking | None = None) -> str:
    """The report page (self-contained: images as data URIs, plots as SVG)."""
    summary = ev.summary()
    measured = [c for c in ev.columns[2:-2] if any(s.get(c) is not None for s in summary)]  # checks not run: no column
    cols = ["method", "images"] + measured + ["notes"]
    better = {**BETTER, **{c: "high" if higher else "low" for c, (_, higher) in metric_facts(ev).items()}}
    body = [f"<h1>Which explanation to trust: {escape(ev.model)}</h1>", f"<p>{INTRO}</p>",
            f"<p>Deletion and insertion canvas: {escape(ev.canvas)}.</p>",
            table(cols, [[_cell(s.get(c)) for c in cols] for s in summary], better),
            *ranks_html(ev, ranking or rank(ev))]
    for image in ev.images:
        body.append(f"<h2>{escape(image)}</h2>" + img(encode_image(ev.images[image][0].cpu()), image, width=150))
        body.extend(_method_row(ev, method, image) for method in ev.methods)
    return page(f"synthviz evaluate: {ev.model}", body, CSS)


def summary_figure(ev: Evaluation, tile: int = 128) -> torch.Tensor:
    """(3, H, W): per image a row, the photo then each method's map labelled "deletion/insertion" AUC."""
    from ..io import resize

    tiles, labels = [], []
    for image in ev.images:
        photo = ev.images[image].cpu()
        tiles.append(resize(photo, tile)[0])
        labels.append(image[:22])
        for method in ev.methods:
            row = next(r for r in ev.rows if r["method"] == method and r["image"] == image)
            tiles.append(resize(heatmap(ev, method, image)[None], tile)[0])
            text = "not scored" if row["deletion_auc"] is None else \
                f"{row['deletion_auc']:.2f}/{row['insertion_auc']:.2f}"
            labels.append(f"{label(method)[:10]} {text}")
    shapes = {tuple(t.shape) for t in tiles}
    if len(shapes) > 1:  # photos of other aspect ratios: square tiles
        tiles = [resize(t[None], (tile, tile))[0] for t in tiles]
    return make_grid(torch.stack(tiles), labels, ncol=len(ev.methods) + 1)


REPORT_FILES = ("metrics.csv", "ranks.csv", "summary.md", "index.html")  # what write_report writes into out


def write_report(ev: Evaluation, out: str | Path, overwrite: bool = False) -> list[Path]:
    """Write ``out/metrics.csv``, ``out/ranks.csv``, ``out/summary.md`` and ``out/index.html``;
    returns the paths written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ranking = rank(ev)
    return [write_file(out / "metrics.csv", metrics_csv(ev), overwrite),
            write_file(out / "ranks.csv", ranks_csv(ranking), overwrite),
            write_file(out / "summary.md", summary_md(ev, ranking), overwrite),
            write_file(out / "index.html", index_html(ev, ranking), overwrite)]
