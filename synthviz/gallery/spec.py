"""Gallery specs: TOML sections of presets expanded into independent items."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import tomllib

from ..errors import SynthvizError, did_you_mean
from ..presets import (
    Preset,
    check_complete,
    load_preset,
    preset_dirs,
    technique_parameters,
    validate,
)
from ..techniques import TECHNIQUES

SPEC_KEYS = ("title", "description", "video", "set", "section")
SECTION_KEYS = ("title", "description", "preset", "set", "over", "split_units", "optional")
THUMB_SIDE = 256  # taller images get a thumbnail of this height; smaller ones are their own thumbnail
DEFAULT_SPEC = "showcase"


# ------------------------------------------------------------------------------------------- spec

@dataclass
class Item:
    """One independent render: ``technique(**params)``; plain data, so it pickles to processes and Ray."""

    id: str
    section: int
    preset: str
    technique: str
    params: dict
    base: str | None = None  # folder of a user's preset file, for relative image paths
    video: str | None = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Section:
    title: str
    description: str
    preset: str
    items: list[Item] = field(default_factory=list)


@dataclass
class Spec:
    title: str
    description: str
    sections: list[Section]
    path: Path | None = None

    @property
    def items(self) -> list[Item]:
        return [it for s in self.sections for it in s.items]


def spec_dirs() -> list[Path]:
    return [d / "galleries" for d in preset_dirs() if (d / "galleries").is_dir()]


def find_spec(spec: str | os.PathLike | None) -> Path:
    """A spec file by path, or a shipped spec by name (``showcase``, the default)."""
    text = str(spec if spec is not None else DEFAULT_SPEC)
    path = Path(text)
    if path.is_file():
        return path
    if text.endswith(".toml"):
        raise SynthvizError(f"gallery spec not found: {path}; check the path")
    shipped = {p.stem: p for d in spec_dirs() for p in d.glob("*.toml")}
    if text not in shipped:
        raise SynthvizError(f"unknown gallery spec '{text}'{did_you_mean(text, shipped)}; pass a .toml file "
                            f"(shipped: {', '.join(sorted(shipped)) or 'none'})")
    return shipped[text]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "section"


def _item_id(section: str, preset: str, technique: str, params: dict, video: str | None) -> str:
    key = json.dumps([preset, technique, params, video], sort_keys=True, default=str)
    return f"{_slug(section)}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"


def load_spec(spec: str | os.PathLike | dict | None = None, overrides: dict | None = None) -> Spec:
    """Read and expand a spec (a path, a shipped name, or an already parsed dict) into items.

    ``overrides`` are applied to every item whose technique takes the key (after the spec's own
    keys), e.g. ``{"size": 64, "steps": 4}`` for a quick test build. Every item is validated here,
    before anything renders.
    """
    path = None
    if isinstance(spec, dict):
        data = spec
    else:
        path = find_spec(spec)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:  # an image or other binary file given as a spec
            raise SynthvizError(f"not a TOML gallery spec: {path} is not a text file; give a .toml spec") from None
        except tomllib.TOMLDecodeError as e:
            raise SynthvizError(f"gallery spec {path} is not valid TOML ({e}); fix the file") from None
    name = str(path or "gallery spec")
    for key in data:
        if key not in SPEC_KEYS:
            raise SynthvizError(f"{name}: unknown key '{key}'{did_you_mean(key, SPEC_KEYS)}; use {', '.join(SPEC_KEYS)}")
    video = data.get("video") or None
    if video is not None and video not in ("gif", "mp4"):
        raise SynthvizError(f"{name}: video must be \"gif\" or \"mp4\", not {video!r}")
    if not data.get("section"):  # an empty file would build an empty page and say nothing
        raise SynthvizError(f"{name} has no sections; add one: [[section]] with preset = \"classviz-lucid\" "
                            "(`synthviz presets` lists them)")
    common = data.get("set", {})
    sections = []
    for si, sec in enumerate(data.get("section", [])):
        for key in sec:
            if key not in SECTION_KEYS:
                raise SynthvizError(f"{name}: section {si + 1} has unknown key '{key}'"
                                    f"{did_you_mean(key, SECTION_KEYS)}; use {', '.join(SECTION_KEYS)}")
        if "preset" not in sec:
            raise SynthvizError(f"{name}: section {si + 1} names no preset; add preset = \"NAME\"")
        preset = load_preset(_relative(sec["preset"], path), validate_params=False)
        if not preset.available:
            if sec.get("optional"):
                continue
            TECHNIQUES.get(preset.technique)  # raises the one-line unknown-technique error
        title = str(sec.get("title", preset.name))
        section = Section(title, str(sec.get("description", preset.description)), preset.name)
        section.items = _expand(section, si, preset, sec, common, overrides or {}, video,
                                f"{name}: section '{title}'")
        sections.append(section)
    known = {k for s in sections for k in technique_parameters(s.items[0].technique)} if any(
        s.items for s in sections) else set()
    for key in [*common, *(overrides or {})]:
        if known and key not in known:  # a key no technique of this gallery takes is a typo, not a no-op
            raise SynthvizError(f"{name}: no technique in this gallery takes '{key}'{did_you_mean(key, known)}")
    return Spec(str(data.get("title", "synthviz gallery")), str(data.get("description", "")), sections, path)


def _relative(value: str, spec_path: Path | None) -> str:
    """A preset path relative to the spec file's folder."""
    if spec_path is not None and value.endswith(".toml") and not Path(value).is_absolute():
        candidate = spec_path.parent / value
        if candidate.is_file():
            return str(candidate)
    return value


def _expand(section: Section, index: int, preset: Preset, sec: dict, common: dict, overrides: dict,
            video: str | None, where: str) -> list[Item]:
    allowed = technique_parameters(preset.technique)
    fixed = {**preset.params, **{k: v for k, v in common.items() if k in allowed}, **sec.get("set", {})}
    last = {k: v for k, v in overrides.items() if k in allowed}  # the caller's overrides win over the spec
    over = sec.get("over", {})
    if not isinstance(over, dict) or not all(isinstance(v, list) and v for v in over.values()):
        raise SynthvizError(f"{where}: over must be a table of non-empty lists, e.g. over = {{ target = [1, 2] }}")
    base = str(preset.path.parent) if preset.path is not None and preset.path.parent not in preset_dirs() else None
    video = video if "frame_every" in allowed else None
    items = []
    for combo in itertools.product(*over.values()):
        params = {**fixed, **dict(zip(over, combo)), **last}
        validate(preset.technique, params, where)
        check_complete(preset.technique, params, where)
        for p in _split_units(params, sec.get("split_units"), where):
            # items whose params match an other section's are still distinct items: the id includes the section
            items.append(Item(_item_id(section.title, preset.name, preset.technique, p, video), index,
                              preset.name, preset.technique, p, base, video))
    return items


def _split_units(params: dict, chunk: int | None, where: str) -> list[dict]:
    """One item per ``chunk`` units of a layer (``units = "all"`` means every channel)."""
    if not chunk:
        return [params]
    if "units" not in params or "layer" not in params:
        raise SynthvizError(f"{where}: split_units needs a preset with layer and units (e.g. channel-grid)")
    from ..layers import LOGITS, layer_shape, parse_units
    from ..models import load_model

    # shapes do not depend on weights: random ones avoid a download just to count channels
    model = load_model(params.get("model", "efficientnet_lite0"), weights="random", device="cpu")
    size = int(params.get("size", 128))
    count = model.num_classes if params["layer"] == LOGITS else layer_shape(model, params["layer"], size)[0]
    units = parse_units(params["units"], count)
    return [{**params, "units": units[i : i + chunk]} for i in range(0, len(units), int(chunk))]


# ------------------------------------------------------------------------------------------ render
