"""``synthviz texture`` and ``synthviz style``: texture synthesis and neural style transfer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import SynthvizError
from ..io import VIDEO_SUFFIXES
from ..techniques.style import style
from ..techniques.texture import texture
from .app import app
from .common import (DEFAULTS, DeviceOpt, LrOpt, ModelOpt, OutOpt, OverwriteOpt, SeedOpt, VideoOpt, WeightsOpt,
                     command, frame_every, prepare_outputs, run_render, say)

StatOpt = Annotated[str, typer.Option(help="Style statistics: gram (Gatys) or moments (mean + covariance).")]
LayerWeightsOpt = Annotated[Optional[str], typer.Option(help="One weight per style layer, e.g. 4,2,1,1,1 (default equal).")]
ScalesOpt = Annotated[Optional[int], typer.Option(help="Sizes in the coarse-to-fine ladder, each twice the previous (default: from 128 px up; 1 = full size only).")]
ParamOpt = Annotated[str, typer.Option(help="Parameterization: pixel or fourier.")]
OptimizerOpt = Annotated[str, typer.Option(help="lbfgs (lr 1) or adam.")]
LadderStepsOpt = Annotated[Optional[int], typer.Option(help="Steps at the coarsest scale; each finer scale gets half (default: texture 200, style 100).")]
PoolOpt = Annotated[str, typer.Option(help="max, or avg to swap the model's max-pooling for average pooling during the render.")]
SmoothOpt = Annotated[str, typer.Option(help="softmax: match statistics of each layer's features through a softmax over its C·H·W values per image (SWAG, Wang et al. 2021; stronger style on networks other than VGG); none: the raw features.")]
TemperatureOpt = Annotated[float, typer.Option(help="With --smooth softmax: features are divided by this first (higher = smoother).")]
TileOpt = Annotated[Optional[int], typer.Option(help="Prints (4096 px and more): scales larger than this many px are painted tile by tile with the whole image's statistics; memory bounded by a tile.")]
BitDepthOpt = Annotated[int, typer.Option(help="8, or 16 for a 16-bit PNG or TIFF --out (prints).")]


def given(**options) -> dict:
    """The options given on the command line: the library's own defaults stand for the rest."""
    return {k: v for k, v in options.items() if v is not None}


def is_video(content: Path, out: Path) -> bool:
    """A video CONTENT: an MP4/WebM/MOV, or a GIF written to a video --out."""
    suffix = content.suffix.lower()
    return suffix in VIDEO_SUFFIXES - {".gif"} or (suffix == ".gif" and out.suffix.lower() in VIDEO_SUFFIXES - {".gif"})


@command(app, "texture")
def texture_cmd(
    example: Annotated[Path, typer.Argument(help="Example texture image.")],
    size: Annotated[int, typer.Option(help="Output side in pixels (any size, not tied to the example's).")] = 256,
    tileable: Annotated[bool, typer.Option("--tileable", help="Make the texture wrap seamlessly.")] = False,
    histogram: Annotated[bool, typer.Option("--match-histogram", help="Match the example's colour histogram at the end.")] = False,
    example_size: Annotated[Optional[int], typer.Option(help="Resize the example's longer side first (sets the texture's scale).")] = None,
    layers: Annotated[Optional[str], typer.Option(help="Style layers, comma-separated (default: the model's preset).")] = None,
    layer_weights: LayerWeightsOpt = None, stat: StatOpt = "gram", scales: ScalesOpt = None,
    param: ParamOpt = "fourier", optimizer: OptimizerOpt = "lbfgs", steps: LadderStepsOpt = None, lr: LrOpt = None,
    tv_weight: Annotated[float, typer.Option(help="Total-variation weight (0 = off).")] = 0.0,
    pool: PoolOpt = "max", model: ModelOpt = DEFAULTS["model"], weights: WeightsOpt = "default", seed: SeedOpt = 0,
    device: DeviceOpt = "auto", out: OutOpt = Path("texture.png"), video: VideoOpt = None,
    overwrite: OverwriteOpt = False, smooth: SmoothOpt = "none", temperature: TemperatureOpt = 1.0,
    bit_depth: BitDepthOpt = 8, tile: TileOpt = None,
) -> None:
    """Synthesize a new image with the texture of EXAMPLE."""
    prepare_outputs(out, video, inputs=[example])
    result = run_render(texture, out, video, overwrite, bit_depth=bit_depth, smooth=smooth, temperature=temperature,
                        example=example, size=size, tileable=tileable,
                        histogram=histogram, example_size=example_size, layers=layers, layer_weights=layer_weights,
                        stat=stat, scales=scales, param=param, optimizer=optimizer, steps=steps, lr=lr,
                        tv_weight=tv_weight, pool=pool, model=model, weights=weights, seed=seed, device=device,
                        progress=True, frame_every=frame_every(video, steps, 200), tile=tile)
    say(result.info["report"])


@command(app, "style")
def style_cmd(
    content: Annotated[Path, typer.Argument(help="Content image.")],
    styles: Annotated[list[Path], typer.Argument(help="One or more style images.")],
    size: Annotated[int, typer.Option(help="Output's longer side in pixels.")] = 512,
    content_weight: Annotated[Optional[float], typer.Option(help="Weight of the (relative) content error (default 1).")] = None,
    style_weight: Annotated[Optional[float], typer.Option(help="Weight of the (relative) style error (default 15; a video: 3).")] = None,
    tv_weight: Annotated[Optional[float], typer.Option(help="Total-variation weight (default 0 = off; a video: 1).")] = None,
    checker_weight: Annotated[Optional[float], typer.Option(help="Weight of the checkerboard penalty (default 1300; 0 = off). An image only.")] = None,
    jitter: Annotated[Optional[int], typer.Option(help="Roll the image by up to this many pixels each step (default 1; 0 = off). An image only.")] = None,
    blend: Annotated[Optional[str], typer.Option(help="One weight per style image, e.g. 0.7,0.3 (default equal).")] = None,
    style_scale: Annotated[float, typer.Option(help="Style images' size as a fraction of the output's.")] = 1.0,
    content_layer: Annotated[Optional[str], typer.Option(help="Content layer (default: the model's preset).")] = None,
    style_layers: Annotated[Optional[str], typer.Option(help="Style layers, comma-separated (default: the model's preset).")] = None,
    layer_weights: LayerWeightsOpt = None, stat: StatOpt = "gram",
    init: Annotated[str, typer.Option(help="Start from the content or from noise.")] = "content",
    preserve_colors: Annotated[bool, typer.Option("--preserve-colors", help="Keep the content's colours.")] = False,
    color_method: Annotated[str, typer.Option(help="With --preserve-colors: luminance (transfer on luma only) or match (recolour the styles first).")] = "luminance",
    scales: ScalesOpt = None, param: ParamOpt = "fourier", optimizer: OptimizerOpt = "adam",
    steps: LadderStepsOpt = None, lr: LrOpt = None, pool: PoolOpt = "max", model: ModelOpt = DEFAULTS["model"],
    weights: WeightsOpt = "default", seed: SeedOpt = 0, device: DeviceOpt = "auto",
    out: OutOpt = Path("style.png"), video: VideoOpt = None, overwrite: OverwriteOpt = False,
    mask: Annotated[Optional[list[Path]], typer.Option(help="One mask image per style (white = that style; none = content).")] = None,
    temporal_weight: Annotated[float, typer.Option(help="A video CONTENT: weight of the temporal loss (Ruder 2016).")] = 100.0,
    smooth: SmoothOpt = "none", temperature: TemperatureOpt = 1.0, bit_depth: BitDepthOpt = 8,
    tile: TileOpt = None,
    average: Annotated[float, typer.Option(help="The output is the moving average of the last scale's iterates with this decay per step (e.g. 0.9; 0 = the last iterate).")] = 0.0,
) -> None:
    """Paint CONTENT (an image, or a video with --out a video) in the style of one or more STYLES images."""
    if is_video(content, out):  # every frame styled, warm-started from the previous one (Ruder et al. 2016)
        from ..faststyle.video_style import style_video_file

        if mask:
            raise SynthvizError("--mask works on an image CONTENT, not a video; drop --mask, or style a frame "
                                "saved as an image")
        if checker_weight is not None or jitter is not None:
            raise SynthvizError("--checker-weight and --jitter work on an image CONTENT, not a video; drop them")
        result = style_video_file(model, content, [str(s) for s in styles], out, size=size, steps=steps or 100,
                                  **given(content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight),
                                  temporal_weight=temporal_weight, blend=blend, stat=stat, weights=weights,
                                  seed=seed, device=device, overwrite=overwrite, progress=True)
        say(f"{result.info['report']}\nsaved {result.info['path']}")
        return
    prepare_outputs(out, video, inputs=[content, *styles])
    if color_method not in ("luminance", "match"):
        raise SynthvizError(f"unknown --color-method '{color_method}'; use luminance or match")
    result = run_render(style, out, video, overwrite, bit_depth=bit_depth, smooth=smooth, temperature=temperature,
                        content=content, styles=styles, size=size,
                        **given(content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight,
                                checker_weight=checker_weight, jitter=jitter), blend=blend,
                        style_scale=style_scale, content_layer=content_layer, style_layers=style_layers,
                        layer_weights=layer_weights, stat=stat, init=init,
                        preserve_colors=color_method if preserve_colors else False, scales=scales, param=param,
                        optimizer=optimizer, steps=steps, lr=lr, pool=pool, model=model, weights=weights, seed=seed,
                        device=device, progress=True, frame_every=frame_every(video, steps, 100),
                        masks=[str(m) for m in mask] if mask else None, tile=tile, average=average)
    say(result.info["report"])
