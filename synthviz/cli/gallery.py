"""``synthviz presets``, ``synthviz run`` and ``synthviz gallery``: named recipes and galleries of them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..checks import non_negative
from ..errors import SynthvizError
from ..gallery import Manifest, build_gallery, load_spec, summarize
from ..gallery.build import check_parallel
from ..presets import call_kwargs, list_presets, load_preset, parse_set
from ..progress import progress
from .app import app
from .common import OverwriteOpt, VideoOpt, command, frame_every, prepare_outputs, run_render, say

SetOpt = Annotated[Optional[list[str]], typer.Option(
    "--set", "-s", help="Override a key: --set size=64 --set target='tabby' (values read as TOML, else text).")]

presets_app = typer.Typer(help="List the shipped presets; `presets show NAME` prints one.", invoke_without_command=True,
                          no_args_is_help=False)
app.add_typer(presets_app, name="presets")


@presets_app.callback()
def presets_cmd(ctx: typer.Context) -> None:
    """List the shipped presets, one line each (run one with `synthviz run NAME`)."""
    if ctx.invoked_subcommand is not None:
        return
    presets = list_presets()
    width = max((len(p.name) for p in presets), default=0)
    twidth = max((len(p.technique) for p in presets), default=0)
    for p in presets:
        missing = "" if p.available else f"  [technique {p.technique} not installed]"
        typer.echo(f"{p.name:{width}s}  {p.technique:{twidth}s}  {p.description}{missing}")


@command(presets_app, "show")
def show_cmd(name: Annotated[str, typer.Argument(help="Preset name or .toml file.")]) -> None:
    """Print preset NAME as TOML (copy it to a file, edit it, and run the file)."""
    typer.echo(load_preset(name, validate_params=False).to_toml().rstrip("\n"))


@command(app, "run")
def run_cmd(
    name: Annotated[str, typer.Argument(help="Preset name (see `synthviz presets`) or a .toml preset file.")],
    set_: SetOpt = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output image (default: NAME.png). Never overwritten silently.")] = None,
    video: VideoOpt = None, overwrite: OverwriteOpt = False,
) -> None:
    """Render preset NAME, with --set key=value overrides of its keys."""
    preset = load_preset(name)
    overrides = parse_set(set_ or [])
    out = out or Path(f"{preset.name}.png")
    prepare_outputs(out, video)
    steps = overrides.get("steps", preset.params.get("steps"))
    kwargs = call_kwargs(preset, overrides, progress=True,
                         frame_every=frame_every(video, steps if isinstance(steps, int) else None) or None)
    # the technique's keys go through a closure: some (image, out...) share names with run_render's own
    result = run_render(lambda: preset.function(**kwargs), out, video, overwrite)
    report = result.info.get("report")
    values = result.values
    say(report if isinstance(report, str) else
        f"{preset.name}: {result.objective}, final objective {values.mean():.4g}" if values.numel() else preset.name)


def _check_index(index: Path | None, units: str | None, unit_steps: int):
    """The dataset index of ``--index`` (None without it), with ``--units`` checked against each of
    its layers and ``--unit-steps`` checked: a bad value fails before any render."""
    if index is None:
        if units is not None:
            raise SynthvizError("--units needs --index (a dataset index made by `synthviz index`)")
        return None
    from ..dataset.run import open_run
    from ..layers import parse_units

    non_negative("unit_steps", unit_steps, integer=True)
    run = open_run(index)
    for layer in run.layers if units is not None else ():
        try:
            parse_units(units, run.channels(layer))
        except SynthvizError as e:
            raise SynthvizError(f"--units {units} for layer {layer} of {index}: {e}") from None
    return run


@command(app, "gallery")
def gallery_cmd(
    spec: Annotated[Optional[str], typer.Argument(help="Gallery spec (.toml file or shipped name); default: the showcase on the embedded model (with --index: none, only the unit pages).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (index.html, manifest.json, items/).")] = Path("synthviz-gallery"),
    workers: Annotated[int, typer.Option(help="Parallel worker processes on this machine (one per GPU when present).")] = 1,
    ray: Annotated[Optional[str], typer.Option("--ray", help="Ray cluster address (auto, ray://HOST:10001, or local): each item a Ray task.")] = None,
    cpus_per_item: Annotated[int, typer.Option(help="CPUs each Ray task asks for (a GPU instead when the cluster has GPUs).")] = 1,
    threads: Annotated[Optional[int], typer.Option(help="CPU threads per item (default: shared out among the workers).")] = None,
    set_: SetOpt = None,
    index: Annotated[Optional[Path], typer.Option("--index", help="A dataset index (`synthviz index`): add a page per unit, linked from the gallery.")] = None,
    units: Annotated[Optional[str], typer.Option(help="With --index: units per layer, like 0-7 or all (default 0-7).")] = None,
    unit_steps: Annotated[int, typer.Option(help="With --index: steps of each unit's feature visualization (0: none).")] = 128,
) -> None:
    """Render a gallery into --out and write --out/index.html; re-running resumes where it stopped."""
    check_parallel(workers, cpus_per_item, threads)
    indexed = _check_index(index, units, unit_steps)  # a bad --index or --units fails before any render
    if indexed is not None and spec is None:  # the unit pages alone, not the default showcase first
        from ..dataset.pages import add_unit_pages

        say(f"unit pages: {add_unit_pages(indexed, out, units, viz_steps=unit_steps)}")
        return
    parsed = load_spec(spec, parse_set(set_ or []))
    total = len(parsed.items)
    done = sum(Manifest(out).done(it, out) for it in parsed.items) if out.is_dir() else 0
    bar = progress(total, "gallery", completed=done, clock="elapsed")

    def report(entry: dict) -> None:
        what = f"{entry['preset']} {entry['tiles'][0]['unit']}" if entry["status"] == "done" else entry["preset"]
        status = f"{entry.get('seconds', 0):.1f} s" if entry["status"] == "done" else f"failed: {entry['error']}"
        bar.print(f"{what}: {status}")
        bar.advance()

    say(f"{parsed.title}: {total} item(s) into {out}" + (f", {done} already done" if done else ""))
    try:
        with bar:
            run = build_gallery(parsed, out, workers=workers, ray=ray, cpus_per_item=cpus_per_item,
                                threads=threads, on_item=report)
    except KeyboardInterrupt:
        say(f"interrupted: every finished item is kept in {out / 'manifest.json'}; run the same command to resume")
        raise typer.Exit(130) from None
    say(summarize(run))
    if index is not None:
        from ..dataset.pages import add_unit_pages

        say(f"unit pages: {add_unit_pages(indexed, out, units, viz_steps=unit_steps)}")
    if run.failed:
        raise SynthvizError(f"{len(run.failed)} item(s) failed (errors in {run.index}); fix them and re-run to retry")
