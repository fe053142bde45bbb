"""``synthviz saliency`` (the comparison figure + raw maps) and ``synthviz sanity`` (cascading randomization)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..io import free_path, save_image
from ..techniques.saliency import DEFAULTS as S
from ..techniques.saliency_figure import save_maps, saliency_figure
from ..techniques.sanity import sanity
from .app import app
from .common import DEFAULTS, DeviceOpt, ModelOpt, OutOpt, OverwriteOpt, WeightsOpt, command, prepare_outputs, say

ImageArg = Annotated[Path, typer.Argument(help="The photo to explain (PNG, JPEG...).")]
ClassOpt = Annotated[Optional[str], typer.Option("--class", "-c", help="Class index or name to explain (default: the predicted class).")]
SizeOpt = Annotated[int, typer.Option(help="Longer side of the photo as the model sees it, in pixels.")]
LayerOpt = Annotated[Optional[str], typer.Option(help="Grad-CAM layer (default: the model's last convolutional stage).")]
BaseOpt = Annotated[str, typer.Option(help="SmoothGrad: the method averaged over noisy copies.")]
SamplesOpt = Annotated[int, typer.Option(help="SmoothGrad: noisy copies.")]
NoiseOpt = Annotated[float, typer.Option(help="SmoothGrad: noise sigma as a fraction of the input range.")]
SquaredOpt = Annotated[bool, typer.Option(help="SmoothGrad: average the squared maps.")]
IgStepsOpt = Annotated[int, typer.Option("--steps", help="Integrated gradients: points on the path.")]
BaselineOpt = Annotated[str, typer.Option(help="Integrated gradients: black, white, blurred or an image file.")]
RuleOpt = Annotated[str, typer.Option(help="Integrated gradients: riemann (midpoint) or gauss-legendre.")]
WindowOpt = Annotated[int, typer.Option(help="Occlusion: window side in pixels.")]
StrideOpt = Annotated[int, typer.Option(help="Occlusion: window step in pixels.")]
ValueOpt = Annotated[float, typer.Option(help="Occlusion: fill value in [0, 1] (0.5 = grey).")]
BatchOpt = Annotated[int, typer.Option(help="Images per forward pass for SmoothGrad, IG and occlusion.")]
SeedOpt = Annotated[int, typer.Option(help="Seed of the SmoothGrad noise (and of the sanity re-initialisation).")]


def _options(layer, base, samples, noise, squared, steps, baseline, rule, window, stride, value, batch_size, seed):
    return dict(layer=layer, base=base, samples=samples, noise=noise, squared=squared, steps=steps,
                baseline=baseline, rule=rule, window=window, stride=stride, value=value, batch_size=batch_size,
                seed=seed)


@command(app, "saliency")
def saliency_cmd(
    image: ImageArg,
    methods: Annotated[str, typer.Option(help="all, or a comma list: gradient, grad_x_input, smoothgrad, guided_backprop, gradcam, guided_gradcam, integrated_gradients, occlusion.")] = "all",
    target: ClassOpt = None,
    with_classviz: Annotated[bool, typer.Option("--with-classviz", help="Add the engine's class visualization of the same class beside the maps.")] = False,
    classviz_steps: Annotated[Optional[int], typer.Option(help="Steps of the class visualization (default: the recipe's).")] = None,
    model: ModelOpt = DEFAULTS["model"], weights: WeightsOpt = "default", size: SizeOpt = 224,
    layer: LayerOpt = S["layer"], base: BaseOpt = S["base"], samples: SamplesOpt = S["samples"],
    noise: NoiseOpt = S["noise"], squared: SquaredOpt = S["squared"], steps: IgStepsOpt = S["steps"],
    baseline: BaselineOpt = S["baseline"], rule: RuleOpt = S["rule"], window: WindowOpt = S["window"],
    stride: StrideOpt = S["stride"], value: ValueOpt = S["value"], batch_size: BatchOpt = S["batch_size"],
    seed: SeedOpt = S["seed"], device: DeviceOpt = "auto", out: OutOpt = Path("saliency.png"),
    overwrite: OverwriteOpt = False,
) -> None:
    """Explain IMAGE with several saliency methods: one labelled comparison figure (photo, then each
    method as a heatmap overlay) and each method's raw map as OUT-STEM-METHOD.npy."""
    prepare_outputs(out, inputs=[image])
    result = saliency_figure(image, methods, target, model=model, weights=weights, size=size, device=device,
                             with_classviz=with_classviz, classviz_steps=classviz_steps, progress=True,
                             **_options(layer, base, samples, noise, squared, steps, baseline, rule, window,
                                        stride, value, batch_size, seed))
    info = result.info
    say(f"{info['model']} class {info['cls']} '{info['label']}': probability {info['probability']:.3f}")
    ig = result.attributions.get("integrated_gradients")
    if ig is not None and ig.info["relative_gap"][0] > 0.05:
        say("note: the integrated-gradients completeness gap is above 5%; raise --steps")
    say(f"saved {save_image(result.figure, out, overwrite)}")
    for path in save_maps(result.attributions, out, overwrite):
        say(f"saved {path}")


@command(app, "sanity")
def sanity_cmd(
    image: ImageArg,
    method: Annotated[str, typer.Option(help="The saliency method to check (see `synthviz saliency --help`).")] = "gradient",
    target: ClassOpt = None,
    model: ModelOpt = DEFAULTS["model"], weights: WeightsOpt = "default", size: SizeOpt = 224,
    tile: Annotated[int, typer.Option(help="Height of each map in the figure.")] = 112,
    depth: Annotated[Optional[int], typer.Option(help="Randomize only the top DEPTH blocks (default: all).")] = None,
    layer: LayerOpt = S["layer"], base: BaseOpt = S["base"], samples: SamplesOpt = S["samples"],
    noise: NoiseOpt = S["noise"], squared: SquaredOpt = S["squared"], steps: IgStepsOpt = S["steps"],
    baseline: BaselineOpt = S["baseline"], rule: RuleOpt = S["rule"], window: WindowOpt = S["window"],
    stride: StrideOpt = S["stride"], value: ValueOpt = S["value"], batch_size: BatchOpt = S["batch_size"],
    seed: SeedOpt = S["seed"], device: DeviceOpt = "auto", out: OutOpt = Path("sanity.png"),
    overwrite: OverwriteOpt = False,
) -> None:
    """Adebayo et al.'s sanity check: re-initialise the layers from the top down, recompute the map
    at each step, and plot its Spearman rank correlation with the original (figure + OUT-STEM.csv)."""
    prepare_outputs(out, inputs=[image])
    result = sanity(image, method, target, model=model, weights=weights, size=size, device=device, depth=depth, tile=tile,
                    progress=True, **_options(layer, base, samples, noise, squared, steps, baseline, rule, window,
                                              stride, value, batch_size, seed))
    say(f"{result.info['model']} class {result.info['cls']} '{result.info['label']}', {result.info['method']}: "
        f"rank correlation {result.correlations[1]:+.3f} after the top block, "
        f"{result.correlations[-1]:+.3f} with every block randomized")
    say(f"saved {save_image(result.figure, out, overwrite)}")
    table = free_path(out.with_suffix(".csv"), overwrite)
    with open(table, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "randomized_down_to", "spearman_abs"])
        for i, (layer_name, corr) in enumerate(zip(result.layers, result.correlations)):
            writer.writerow([i, layer_name, f"{corr:.6f}"])
    say(f"saved {table}")
