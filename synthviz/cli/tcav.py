"""``synthviz tcav``: does a concept, given by example images, raise a class's score at a layer?
(TCAV, Kim et al. 2018, with a calibrated null): OUT/tcav.csv, the CAVs cached under OUT/cavs/."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..io import claim_folder, write_file
from ..models import load_model
from .app import app
from .common import DEFAULTS, DeviceOpt, ModelOpt, OverwriteOpt, SeedOpt, WeightsOpt, command, say

COLUMNS = ["layer", "concept", "score", "std", "p_value", "significant", "cav_accuracy"]


def rows_csv(rows: list[dict]) -> str:
    """The rows of a TCAV result as CSV text with :data:`COLUMNS`."""
    text = io.StringIO()
    writer = csv.DictWriter(text, COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{row[k]:.6g}" if isinstance(row[k], float) else row[k]) for k in COLUMNS})
    return text.getvalue()


@command(app, "tcav")
def tcav_cmd(
    concept: Annotated[list[Path], typer.Option("--concept", help="A folder of images showing the concept (repeatable); the folder's name names it.")],
    random: Annotated[Path, typer.Option("--random", help="A folder of random images (at least 1.5x as many as the largest concept folder, plus one).")],
    inputs: Annotated[Path, typer.Option("--inputs", help="A folder of images of the class.")],
    target: Annotated[str, typer.Option("--class", "-c", help="The class whose score is tested (index or name).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder: tcav.csv, and the CAVs under cavs/ (reused by a re-run).")],
    layers: Annotated[Optional[str], typer.Option(help="Comma list of layers, as `synthviz layers` names them (default: the model's middle layer).")] = None,
    runs: Annotated[int, typer.Option(help="CAVs per concept and layer, each on a half of the concept images against as many random ones.")] = 20,
    nulls: Annotated[Optional[int], typer.Option(help="Null concepts drawn from the random images for the p-values (default: enough for the Bonferroni correction).")] = None,
    alpha: Annotated[float, typer.Option(help="Significance level, Bonferroni-corrected over concepts x layers.")] = 0.05,
    size: Annotated[int, typer.Option(help="Side of the square the images are resized to.")] = 224,
    model: ModelOpt = DEFAULTS["model"], weights: WeightsOpt = "default", seed: SeedOpt = 0,
    device: DeviceOpt = "auto", overwrite: OverwriteOpt = False,
) -> None:
    """TCAV scores with a calibrated null: for each concept and layer, the fraction of the class's
    images whose score rises along the concept's CAV (mean and std over --runs CAVs), its p-value
    against null concepts drawn from the random images (Bonferroni-corrected) and the CAVs' held-out
    accuracy, as OUT/tcav.csv. Ctrl-C keeps the CAVs fitted so far; a re-run reuses them."""
    from ..techniques.tcav import tcav

    with claim_folder(out, holds=("tcav.csv",), overwrite=overwrite, what="a TCAV result"):
        m = load_model(model, weights, device)
        try:
            result = tcav(m, concepts=list(concept), random=random, inputs=inputs, target=target, layers=layers,
                          runs=runs, nulls=nulls, alpha=alpha, size=size, seed=seed, cache=out / "cavs")
        except KeyboardInterrupt:
            say(f"interrupted: the CAVs fitted so far are kept in {out / 'cavs'}; run the same command again to resume")
            raise typer.Exit(130) from None
        for note in result.info["notes"]:
            say(f"note: {note}")
        rows = result.info["rows"]
        for r in rows:
            say(f"{r['layer']} {r['concept']}: score {r['score']:.3f} ± {r['std']:.3f}, p = {r['p_value']:.3g}"
                f"{' (significant)' if r['significant'] else ''}, CAV accuracy {r['cav_accuracy']:.2f}")
        say(f"p-values: {result.info['nulls']} null concepts, Bonferroni over {result.info['tests']} tests")
        say(f"saved {write_file(out / 'tcav.csv', rows_csv(rows), overwrite=True)}")
