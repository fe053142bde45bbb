"""Issue 26, the newer commands given bad input: each case a one-line ``error: ...`` naming the fix
(exit 2, no traceback, before any work) or the right result. Two runs into one --out at once and a
killed run's leftovers run as child processes, as the suite's other fault tests do."""

from __future__ import annotations

import csv
import time

import huggingface_hub.constants
import pytest
import torch
import torchvision

import synthviz.evaluation.run as evaluation_run
import synthviz.techniques.attack_map as attack_map_module
from synthviz.env import env_flag
from synthviz.evaluation.report import REPORT_FILES
from synthviz.errors import BadValue
from synthviz.io import load_image, resize, save_image
from synthviz.models import Model, load_model

from clihelp import cli_start, help_output, one_line_error, run, runner
from synthviz.cli import app


@pytest.fixture(scope="module")
def photos(tmp_path_factory, chelsea):
    """A folder of two 64 px photos, a 1x1 image and a 2000x40 strip."""
    folder = tmp_path_factory.mktemp("photos")
    save_image(resize(chelsea, 64), folder / "cat.png")
    save_image(resize(chelsea.flip(-1), 64), folder / "cat-flipped.png")
    save_image(torch.rand(3, 1, 1), folder / "dot.png")
    save_image(torch.rand(3, 40, 2000), folder / "strip.png")
    return folder


def _no_model(*args, **kwargs):
    raise AssertionError("the model was loaded: the option should have been refused before any work")


QUICK = ("--methods", "gradient", "--checks", "none", "--curve-steps", 2, "--size", 64, "--samples", 2)


# ------------------------------------------------------------------ evaluate: one --out, two runs

SLOW_EVALUATION = """
    import synthviz.evaluation.run as r
    real = r.evaluate_methods
    def slow(*a, **k):
        print("evaluating", flush=True)
        time.sleep(float(os.environ.get("HOLD", "0")))
        return real(*a, **k)
    r.evaluate_methods = slow
"""


def test_a_second_evaluate_into_the_same_out_is_refused_at_once_and_a_killed_ones_claim_is_stale(photos, tmp_path):
    out = tmp_path / "report"
    first = cli_start(SLOW_EVALUATION, "evaluate", photos / "cat.png", "--out", out, *QUICK, cwd=tmp_path,
                      env={"HOLD": "300"})
    try:
        assert first.stdout.readline().strip() == "evaluating", first.stderr.read()
        start = time.perf_counter()
        second = run("evaluate", photos / "cat.png", "--out", out, *QUICK)
        line = one_line_error(second, "being written by another synthviz run", f"pid {first.pid}", "another --out")
        assert time.perf_counter() - start < 10, line
        # --overwrite does not let it write over a report being made either
        one_line_error(run("evaluate", photos / "cat.png", "--out", out, *QUICK, "--overwrite"), "another --out")
        first.kill()  # SIGKILL: the first run never writes its report
        first.wait(timeout=30)
    finally:
        first.kill()
        first.wait(timeout=30)
    assert not (out / "metrics.csv").exists()
    again = run("evaluate", photos / "cat.png", "--out", out, *QUICK)  # the dead run's claim does not block
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in out.iterdir()) == sorted(REPORT_FILES)  # the claim is gone
    one_line_error(run("evaluate", photos / "cat.png", "--out", out, *QUICK), "already holds a report", "--overwrite")


def test_two_evaluate_runs_at_once_leave_one_saying_saved(photos, tmp_path):
    out = tmp_path / "report"
    runs = [cli_start(SLOW_EVALUATION, "evaluate", photos / "cat.png", "--out", out, *QUICK, cwd=tmp_path,
                      env={"HOLD": "10"}) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stdout.read() + p.stderr.read()) for p in runs]
    saved = [output for code, output in results if code == 0]
    refused = [output for code, output in results if code == 2]
    assert len(saved) == 1 and len(refused) == 1, results
    assert "saved" in saved[0] and "saved" not in refused[0] and "another --out" in refused[0]
    assert "Traceback" not in refused[0]


# ------------------------------------------------------------------ options refused before any work

def test_evaluate_curve_steps_0_is_refused_before_the_model_loads(photos, tmp_path, monkeypatch):
    monkeypatch.setattr(evaluation_run, "load_model", _no_model)
    one_line_error(run("evaluate", photos / "cat.png", "--out", tmp_path / "r", "--curve-steps", 0),
                   "curve_steps must be positive, not 0")
    one_line_error(run("evaluate", photos / "cat.png", "--out", tmp_path / "r", "--samples", 0),
                   "samples must be positive")
    one_line_error(run("evaluate", photos / "cat.png", "--out", tmp_path / "r", "--checks", "rood"),
                   "unknown check 'rood'")
    assert not (tmp_path / "r").exists()  # the refused run leaves no folder behind


def test_attack_map_k_0_is_refused_before_the_model_loads_and_k_too_large_before_the_map(photos, tmp_path,
                                                                                          monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(attack_map_module, "load_model", _no_model)
        one_line_error(run("attack-map", photos / "cat.png", "--k", 0, "--out", tmp_path / "a.png"),
                       "k must be positive, not 0")
    m0 = []
    monkeypatch.setattr(attack_map_module, "relevance", lambda *a, **k: m0.append(1))
    h, w = load_image(photos / "cat.png").shape[-2:]  # 64 px on the longer side already
    one_line_error(run("attack-map", photos / "cat.png", "--k", 100000, "--size", 64, "--out", tmp_path / "a.png"),
                   f"k must be between 1 and {h * w - 1} pixels, not 100000")
    assert m0 == []  # refused before the first map


# ------------------------------------------------------------------ images too small for the model

def test_evaluate_skips_and_lists_images_too_small_for_the_model(photos, tmp_path):
    out = tmp_path / "report"
    result = run("evaluate", photos, "--out", out, *QUICK)
    assert result.exit_code == 0, result.output
    note = next(line for line in result.output.splitlines() if line.startswith("note: skipped"))
    assert "dot.png (1x1 px, smaller than the 32 px the model needs" in note
    assert "strip.png (2000x40 px: at --size 64 its shorter side is 1 px" in note
    with open(out / "metrics.csv") as f:
        assert {r["image"] for r in csv.DictReader(f)} == {"cat.png", "cat-flipped.png"}


def test_evaluate_says_which_canvas_deletion_and_insertion_used(photos, tmp_path):
    out = tmp_path / "report"
    result = run("evaluate", photos / "cat.png", "--out", out, *QUICK)
    assert result.exit_code == 0, result.output
    assert f"deletion and insertion canvas: {evaluation_run.CANVAS}" in result.output
    assert "the image blurred" in evaluation_run.CANVAS
    assert f"Deletion and insertion canvas: {evaluation_run.CANVAS}" in (out / "index.html").read_text()


@pytest.mark.parametrize("name, size, fragments", [
    ("dot.png", 224, ["dot.png: 1x1 px", "the 32 px the model needs", "use an image at least 32x32 px"]),
    ("strip.png", 64, ["strip.png: 2000x40 px", "at --size 64 its shorter side is 1 px", "use --size 1575 or more"]),
])
def test_attack_map_on_an_image_too_small_names_the_file_its_shape_and_the_fix(photos, tmp_path, name, size,
                                                                                fragments):
    line = one_line_error(run("attack-map", photos / name, "--size", size, "--out", tmp_path / "a.png"), *fragments)
    usage = help_output("attack-map")
    assert all(word.strip(";,.") in usage for word in line.split() if word.startswith("--"))  # options it has


# ------------------------------------------------------------------ SYNTHVIZ_FUSE and SYNTHVIZ_DEBUG

@pytest.mark.parametrize("value, fused", [("0", False), ("false", False), ("No", False), ("OFF", False),
                                          ("1", True), ("TRUE", True), ("yes", True), ("on", True), ("", True)])
def test_synthviz_fuse_takes_the_usual_yes_no_words(value, fused, monkeypatch, chelsea):
    monkeypatch.setenv("SYNTHVIZ_FUSE", value)
    model = Model(torchvision.models.resnet18(num_classes=10), owned=False)
    photo = resize(chelsea, (64, 64))
    assert (model.runner(photo) is not model.net) == fused


def test_a_switch_that_is_not_yes_or_no_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("SYNTHVIZ_FUSE", "maybe")
    with pytest.raises(BadValue, match="SYNTHVIZ_FUSE='maybe' is not a yes/no value; set it to 1 or 0"):
        env_flag("SYNTHVIZ_FUSE", True)
    one_line_error(run("classviz", "--steps", 1, "--size", 32, "--out", tmp_path / "c.png"), "SYNTHVIZ_FUSE='maybe'")
    monkeypatch.delenv("SYNTHVIZ_FUSE")
    result = runner.invoke(app, ["layers"], env={"SYNTHVIZ_DEBUG": "sure"})
    one_line_error(result, "SYNTHVIZ_DEBUG='sure' is not a yes/no value")


# ------------------------------------------------------------------ MaCo canvas, presets, timm offline

def test_a_maco_canvas_too_large_for_memory_is_one_line_with_the_estimate(tmp_path):
    start = time.perf_counter()
    one_line_error(run("classviz", "--recipe", "maco", "--canvas", 100000, "--out", tmp_path / "m.png"),
                   "a 100000x100000 px canvas needs about", "GiB", "use a smaller --canvas")
    assert time.perf_counter() - start < 30 and not (tmp_path / "m.png").exists()


def test_a_png_given_as_a_preset_or_a_gallery_spec_is_one_line(photos, tmp_path):
    one_line_error(run("run", photos / "cat.png"), "not a TOML preset: ", "cat.png")
    one_line_error(run("presets", "show", photos / "cat.png"), "not a TOML preset: ")
    one_line_error(run("gallery", photos / "cat.png", "--out", tmp_path / "g"), "not a TOML gallery spec: ")


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """No network to the hub (a port that refuses at once) and an empty Hugging Face cache."""
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    for proxy in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path / "hub"


def test_timm_default_weights_offline_fail_at_once_in_one_line(offline_hub, tmp_path):
    pytest.importorskip("timm")
    start = time.perf_counter()
    result = run("classviz", "--model", "timm:vit_tiny_patch16_224", "--steps", 1, "--out", tmp_path / "t.png")
    seconds = time.perf_counter() - start
    one_line_error(result, "no network: the pretrained weights of timm:vit_tiny_patch16_224 could not be downloaded",
                   "--weights random")
    assert seconds < 10, seconds


def test_timm_default_weights_in_the_hub_cache_load_without_the_network(offline_hub):
    timm = pytest.importorskip("timm")
    from safetensors.torch import save_file

    snapshot = offline_hub / "models--timm--vit_tiny_patch16_224.augreg_in21k_ft_in1k" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("abc123")
    weights = timm.create_model("vit_tiny_patch16_224", pretrained=False).state_dict()
    weights = {k: torch.randn_like(v) for k, v in weights.items()}
    save_file(weights, str(snapshot / "model.safetensors"))
    model = load_model("timm:vit_tiny_patch16_224")
    loaded = model.net.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in weights.items())


# ------------------------------------------------------------------ gallery --index

@pytest.fixture(scope="module")
def indexed(tmp_path_factory, photos):
    root = tmp_path_factory.mktemp("indexed")
    for name in ("cat.png", "cat-flipped.png"):
        (root / "photos").mkdir(exist_ok=True)
        (root / "photos" / name).write_bytes((photos / name).read_bytes())
    result = run("index", root / "photos", "--out", root / "run", "--layers", "_blocks.1", "--size", 32,
                 "--top-k", 2, "--batch-size", 2, "--workers", 0)
    assert result.exit_code == 0, result.output
    return root / "run"


def test_gallery_index_without_a_spec_writes_only_the_unit_pages(indexed, tmp_path, monkeypatch):
    import synthviz.cli.gallery as gallery_cli

    monkeypatch.setattr(gallery_cli, "build_gallery", _no_model)  # no showcase render
    out = tmp_path / "g"
    result = run("gallery", "--index", indexed, "--units", "0-1", "--unit-steps", 0, "--out", out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "units" / "_blocks.1").glob("*.html")) == ["0.html", "1.html"]
    assert not (out / "index.html").exists() and not (out / "manifest.json").exists()


def test_gallery_index_units_out_of_range_fail_before_any_render(indexed, tmp_path, monkeypatch):
    import synthviz.cli.gallery as gallery_cli

    monkeypatch.setattr(gallery_cli, "build_gallery", _no_model)
    monkeypatch.setattr(gallery_cli, "load_spec", _no_model)
    one_line_error(run("gallery", "--index", indexed, "--units", "0-999", "--out", tmp_path / "g"),
                   "--units 0-999 for layer _blocks.1", "out of range")
    one_line_error(run("gallery", "--units", "0-1", "--out", tmp_path / "g"), "--units needs --index")
    assert not (tmp_path / "g").exists()
