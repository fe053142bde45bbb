"""Presets: named recipes stored as TOML, so a render is data, not code.

A preset file names a technique and the keyword arguments of its Python function::

    description = "Class visualization, Lucid recipe (Fourier + decorrelated colour + robustness)"
    technique = "classviz"

    [params]
    target = "Egyptian cat"
    size = 128

Shipped presets live in ``synthviz/presets/`` (the repository's ``presets/`` folder); a user's own
``.toml`` file works wherever a preset name does. Keys are checked against the technique's
signature: an unknown key gets the closest valid keys, a wrong type names the key and the type
expected. Image values may be file paths or ``"skimage:NAME"`` (a scikit-image sample photo, for
demos and tests), resolved to a (1, 3, H, W) tensor in [0, 1] before the technique is called.
"""

from __future__ import annotations

import inspect
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .result import Result
from .errors import SynthvizError, did_you_mean
from .techniques import TECHNIQUES
from .typecheck import show_value, accepts, type_name

SKIMAGE_PREFIX = "skimage:"
TOP_KEYS = ("description", "technique", "params")


def preset_dirs() -> list[Path]:
    """Where shipped presets live: inside the installed package (wheel), else the repository's ``presets/``."""
    import synthviz

    here = Path(synthviz.__file__).resolve().parent
    return [d for d in (here / "presets", here.parent / "presets") if d.is_dir()]


@dataclass
class Preset:
    """A named recipe: ``technique`` called with ``params`` (plain TOML values)."""

    name: str
    technique: str
    params: dict = field(default_factory=dict)
    description: str = ""
    path: Path | None = None

    @property
    def function(self):
        return TECHNIQUES.get(self.technique)

    @property
    def available(self) -> bool:
        return self.technique in TECHNIQUES

    def with_params(self, overrides: dict | None) -> "Preset":
        """A copy with ``overrides`` applied (and validated)."""
        params = {**self.params, **(overrides or {})}
        validate(self.technique, params, self.name)
        return Preset(self.name, self.technique, params, self.description, self.path)

    def to_toml(self) -> str:
        """The preset as TOML text (the file's own text when it came from a file)."""
        if self.path is not None and self.path.is_file():
            return self.path.read_text()
        lines = [f"description = {_toml(self.description)}", f"technique = {_toml(self.technique)}", "", "[params]"]
        return "\n".join(lines + [f"{k} = {_toml(v)}" for k, v in self.params.items()]) + "\n"


def _toml(value) -> str:
    """A plain value (str, number, bool, list, inline table) as TOML; JSON string escapes are valid TOML."""
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml(v)}" for k, v in value.items()) + "}"
    return json.dumps(str(value))


def list_presets() -> list[Preset]:
    """Every shipped preset, sorted by name (unvalidated: a preset whose technique is not
    installed is listed with ``available == False``)."""
    found: dict[str, Path] = {}
    for d in preset_dirs():
        for path in sorted(d.glob("*.toml")):
            found.setdefault(path.stem, path)
    return [_read(path, path.stem) for name, path in sorted(found.items())]


def preset_names() -> list[str]:
    return [p.name for p in list_presets()]


def load_preset(name: str | os.PathLike | Preset, validate_params: bool = True) -> Preset:
    """A shipped preset by name, or a ``.toml`` file by path; validated against its technique."""
    if isinstance(name, Preset):
        preset = name
    else:
        text = str(name)
        path = Path(text)
        if text.endswith(".toml") or path.is_file():
            if not path.is_file():
                raise SynthvizError(f"preset file not found: {path}; check the path, or run `synthviz presets`")
            preset = _read(path, path.stem)
        else:
            shipped = {p.stem: p for d in preset_dirs() for p in d.glob("*.toml")}
            if text not in shipped:
                raise SynthvizError(f"unknown preset '{text}'{did_you_mean(text, shipped)}; "
                                    "run `synthviz presets` for the list, or pass a .toml file")
            preset = _read(shipped[text], text)
    if validate_params:
        validate(preset.technique, preset.params, preset.name)
    return preset


def _read(path: Path, name: str) -> Preset:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:  # an image or other binary file given as a preset
        raise SynthvizError(f"not a TOML preset: {path} is not a text file; give a .toml preset file "
                            "or a preset name (`synthviz presets` lists them)") from None
    except tomllib.TOMLDecodeError as e:
        raise SynthvizError(f"preset {path} is not valid TOML ({e}); fix the file") from None
    except OSError as e:
        raise SynthvizError(f"cannot read preset {path} ({e.strerror})") from None
    for key in data:
        if key not in TOP_KEYS:
            raise SynthvizError(f"preset '{name}': unknown top-level key '{key}'{did_you_mean(key, TOP_KEYS)}; "
                                f"use {', '.join(TOP_KEYS)} (technique arguments go under [params])")
    if not isinstance(data.get("technique"), str):
        raise SynthvizError(f"preset '{name}' names no technique; add a line like technique = \"classviz\"")
    params = data.get("params", {})
    if not isinstance(params, dict):
        raise SynthvizError(f"preset '{name}': params must be a table ([params])")
    return Preset(name, data["technique"], params, str(data.get("description", "")), path)


# --------------------------------------------------------------------------------------- validation

def technique_parameters(technique: str) -> dict[str, tuple[object, object]]:
    """``{key: (type, default)}`` for a technique's keyword arguments: the type from
    ``typing.get_type_hints`` (the default's type when a parameter has no hint); for a technique
    taking ``**options``, the options it registered (``register_technique(options=...)``)."""
    fn = TECHNIQUES.get(technique)
    hints = typing.get_type_hints(fn)
    out = {}
    for name, p in inspect.signature(fn).parameters.items():
        if p.kind == p.VAR_POSITIONAL:
            continue
        if p.kind == p.VAR_KEYWORD:
            for key, default in fn.options().items():
                out.setdefault(key, (type(default) if isinstance(default, (bool, int, float, str)) else None, default))
            continue
        default = None if p.default is p.empty else p.default
        fallback = type(default) if isinstance(default, (bool, int, float, str)) else None
        out[name] = (hints.get(name, fallback), default)
    return out


def required_keys(technique: str) -> list[str]:
    """Keys a technique cannot do without: arguments with no default, and its inputs (the
    positional arguments after the model) that default to None."""
    fn = TECHNIQUES.get(technique)
    return [n for n, p in inspect.signature(fn).parameters.items()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and (p.default is p.empty or (p.default is None and p.kind != p.KEYWORD_ONLY and n != "model"))]


def validate(technique: str, params: dict, name: str = "preset") -> None:
    """Check ``params`` against ``technique``'s signature; one-line errors that name the fix."""
    allowed = technique_parameters(technique)
    for key, value in params.items():
        if key not in allowed:
            if _open_ended(technique):
                continue  # **kwargs with no documented table: the technique checks them itself
            raise SynthvizError(f"{name}: unknown key '{key}' for technique {technique}"
                                f"{did_you_mean(key, allowed)}; valid keys: {', '.join(allowed)}")
        tp, _ = allowed[key]
        if not accepts(tp, value):
            raise SynthvizError(f"{name}: '{key}' must be {type_name(tp)}, not {show_value(value)}")


def _open_ended(technique: str) -> bool:
    fn = TECHNIQUES.get(technique)
    return any(p.kind == p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values()) and not fn.options()


def check_complete(technique: str, params: dict, name: str = "preset") -> None:
    """Every required key of the technique is given (a required ``model`` defaults to the embedded
    model, as on the command line: it is filled in here)."""
    if "model" in required_keys(technique) and "model" not in params:
        from .models import DEFAULT_MODEL

        params["model"] = DEFAULT_MODEL
    missing = [k for k in required_keys(technique) if k not in params]
    if missing:
        raise SynthvizError(f"{name}: technique {technique} needs {', '.join(repr(k) for k in missing)}; "
                            f"add {missing[0]} = ... under [params] or --set {missing[0]}=...")


def parse_set(items: list[str] | tuple[str, ...]) -> dict:
    """``["size=64", "target='tabby'", "units=[0, 1]"]`` -> a dict; each value is read as a TOML value
    (numbers, booleans, quoted strings, arrays), else kept as a plain string (``target=tabby``)."""
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SynthvizError(f"cannot read --set '{item}'; write it as key=value, e.g. --set size=64")
        try:
            out[key] = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            out[key] = raw.strip()
    return out


# --------------------------------------------------------------------------------------- running

def skimage_image(name: str) -> torch.Tensor:
    """scikit-image's sample image ``name`` as (1, 3, H, W) in [0, 1] (a demo/test dependency)."""
    try:
        import skimage.data
    except ImportError:
        raise SynthvizError(f"'{SKIMAGE_PREFIX}{name}' needs scikit-image: pip install scikit-image, "
                            "or give an image file path instead") from None
    from .io import to_tensor

    names = [n for n in getattr(skimage.data, "__all__", dir(skimage.data)) if not n.startswith("_")]
    fn = getattr(skimage.data, name, None) if name in names else None
    if fn is None:
        raise SynthvizError(f"unknown scikit-image sample '{name}'{did_you_mean(name, names)}; "
                            "e.g. skimage:chelsea, skimage:astronaut, skimage:coffee")
    try:
        array = fn()
    except Exception as e:  # samples that are not bundled need a download
        raise SynthvizError(f"cannot load scikit-image sample '{name}' ({type(e).__name__}); "
                            "use a bundled one (chelsea, astronaut, coffee, brick) or a file path") from None
    return to_tensor(array, source=f"{SKIMAGE_PREFIX}{name}").contiguous()


def resolve_value(value, base: Path | None = None):
    """``"skimage:NAME"`` -> image tensor; a relative path that exists next to the preset file
    (``base``) but not in the working folder -> that path; lists element-wise; the rest unchanged."""
    if isinstance(value, list):
        return [resolve_value(v, base) for v in value]
    if isinstance(value, str):
        if value.startswith(SKIMAGE_PREFIX):
            return skimage_image(value[len(SKIMAGE_PREFIX):])
        if base is not None and Path(value).suffix and not Path(value).is_absolute() \
                and not Path(value).exists() and (base / value).exists():
            return str(base / value)
    return value


def resolve_params(params: dict, base: Path | None = None) -> dict:
    return {k: resolve_value(v, base) for k, v in params.items()}


def call_kwargs(preset: Preset, overrides: dict | None = None, **extra) -> dict:
    """The keyword arguments to call the technique with: preset params + ``overrides`` (validated),
    then ``extra`` keys (progress, frame_every, device...) only where the technique takes them."""
    p = preset.with_params(overrides)  # a copy: check_complete may fill in the model
    check_complete(p.technique, p.params, p.name)
    allowed = technique_parameters(p.technique)
    base = p.path.parent if p.path is not None and p.path.parent not in preset_dirs() else None
    kwargs = resolve_params(p.params, base)
    for key, value in extra.items():
        if key in allowed and key not in p.params and value is not None:
            kwargs[key] = value
    return kwargs


def run_preset(preset: str | os.PathLike | Preset, overrides: dict | None = None, **extra) -> Result:
    """Render a preset (a name, a ``.toml`` path or a :class:`Preset`), with ``overrides`` (keys of
    the technique, validated) and ``extra`` keys passed only where the technique accepts them.

    >>> result = run_preset("classviz-lucid", {"size": 64, "steps": 8})
    """
    p = load_preset(preset)
    return p.function(**call_kwargs(p, overrides, **extra))
