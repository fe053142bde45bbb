"""Faults survived (issue 11): Ctrl-C (a real SIGINT to a real process) keeps the finished
images and a valid page; SIGKILL of a gallery leaves no worker alive; a full disk gives one line,
"could not write PATH: reason", and leaves no 0-byte or half file."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from synthviz.errors import WriteError
from synthviz.io import load_image, save_image, save_video

from clihelp import ENV, cli_with, run, sigint_default


def assert_interrupted(proc: subprocess.CompletedProcess) -> str:
    output = proc.stdout + proc.stderr
    assert proc.returncode == 130, output
    assert "Traceback" not in output and "interrupted" in output, output
    return output


def test_ctrl_c_in_probe_keeps_the_finished_and_the_current_units(tmp_path):
    # SIGINT at step 3 of the second batch of units: batch one is finished, batch two stands as it is
    patch = """
        from synthviz.callbacks import ProgressBar
        calls = [0]
        def step(self, info):
            calls[0] += 1
            if calls[0] == 8:  # 5 steps of batch one, then step 3 of batch two
                os.kill(os.getpid(), signal.SIGINT)
        ProgressBar.__call__ = step
    """
    out = tmp_path / "probe.png"
    proc = cli_with(patch, "probe", "_blocks.2", "0-3", "--batch-size", 2, "--size", 32, "--steps", 5,
                    "--out", out, cwd=tmp_path)
    assert "saved the image as it stood" in assert_interrupted(proc)
    grid = load_image(out)
    assert grid.shape[-1] >= 2 * 32 and grid.shape[-2] >= 2 * 32  # 4 labelled tiles in a 2 x 2 grid


def test_ctrl_c_in_saliency_keeps_the_finished_methods(tmp_path, cat_png):
    patch = """
        import synthviz.techniques.saliency_figure as sf
        real, calls = sf.attribute, [0]
        def attribute(*a, **k):
            calls[0] += 1
            if calls[0] == 3:  # during the third method
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(30)
            return real(*a, **k)
        sf.attribute = attribute
    """
    out = tmp_path / "sal.png"
    proc = cli_with(patch, "saliency", cat_png, "--methods", "gradient,grad_x_input,occlusion", "--size", 64,
                    "--out", out, cwd=tmp_path)
    assert "2 finished method(s)" in assert_interrupted(proc)
    figure = load_image(out)
    assert figure.shape[-1] >= 3 * 64  # the photo and the two finished maps
    assert sorted(p.name for p in tmp_path.glob("*.npy")) == ["sal-grad_x_input.npy", "sal-gradient.npy"]


def test_ctrl_c_in_sanity_keeps_the_finished_steps(tmp_path, cat_png):
    patch = """
        import synthviz.techniques.sanity as sanity
        real, calls = sanity.attribute, [0]
        def attribute(*a, **k):
            calls[0] += 1
            if calls[0] == 3:  # the original and one randomized step are done
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(30)
            return real(*a, **k)
        sanity.attribute = attribute
    """
    out = tmp_path / "sanity.png"
    proc = cli_with(patch, "sanity", cat_png, "--size", 64, "--depth", 4, "--out", out, cwd=tmp_path)
    assert "1 finished step(s)" in assert_interrupted(proc)
    assert load_image(out).shape[-1] > 2 * 32
    rows = (tmp_path / "sanity.csv").read_text().splitlines()
    assert rows[0] == "step,randomized_down_to,spearman_abs" and len(rows) == 3


SPEC = """
title = "faults"
[[section]]
title = "classes"
preset = "classviz-lucid"
set = {{ size = 32, steps = {steps} }}
over = {{ target = [1, 2, 3, 4, 5, 6, 7, 8] }}
"""


def start_gallery(tmp_path: Path, steps: int, workers: int = 2) -> tuple[subprocess.Popen, Path]:
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.format(steps=steps))
    out = tmp_path / "g"
    proc = subprocess.Popen([sys.executable, "-m", "synthviz", "gallery", spec, "--workers", str(workers),
                             "--threads", "1", "--out", out], cwd=tmp_path, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,  # its own process group
                            preexec_fn=sigint_default)
    return proc, out


def finished(out: Path) -> int:
    journal = out / ".manifest.journal"
    return len(journal.read_text().splitlines()) if journal.exists() else 0


def wait_for(condition, timeout: float = 180) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.2)


def children(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def test_ctrl_c_in_a_gallery_with_workers_writes_the_page_of_what_finished(tmp_path):
    proc, out = start_gallery(tmp_path, steps=40)
    try:
        wait_for(lambda: finished(out) >= 1)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal: the whole foreground group
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and "Traceback" not in err, err
    manifest = json.loads((out / "manifest.json").read_text())
    done = [e for e in manifest["items"].values() if e["status"] == "done"]
    assert done, manifest
    page = (out / "index.html").read_text()
    assert page.rstrip().endswith("</html>")
    for entry in done:
        for tile in entry["tiles"]:
            assert tile["src"] in page and (out / tile["src"]).exists()
    wait_for(lambda: not group_alive(proc.pid), timeout=15)  # no worker left behind


def test_sigkill_of_a_gallery_leaves_no_worker_alive(tmp_path):
    proc, out = start_gallery(tmp_path, steps=400)
    try:
        wait_for(lambda: len(children(proc.pid)) >= 2)  # the workers are started
        time.sleep(5)  # and most likely rendering
        os.kill(proc.pid, signal.SIGKILL)  # the parent only: no cleanup code runs in it
        proc.wait(timeout=30)
        wait_for(lambda: not group_alive(proc.pid), timeout=90)  # the workers noticed and exited
    finally:
        if group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)


FULL_DISK = """
import resource, signal, sys
import torch
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # a disk that is full after 4 KiB per file
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write then fails with EFBIG instead of killing us
from synthviz.errors import WriteError
from synthviz.io import save_image, save_video
torch.manual_seed(0)
frames = [torch.rand(3, 64, 64) for _ in range(6)]
for save, path in [(save_image, "x.png"), (save_video, "x.gif"), (save_video, "x.mp4")]:
    try:
        save(frames if save is save_video else frames[0], path)
        print("saved", path)
    except WriteError as e:
        print(e)
"""


def test_a_full_disk_gives_one_line_and_no_file(tmp_path):
    proc = subprocess.run([sys.executable, "-c", FULL_DISK], cwd=tmp_path, env=ENV, capture_output=True, text=True,
                          timeout=120)
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert [line.split(":")[0] for line in lines] == [f"could not write {p}" for p in ("x.png", "x.gif", "x.mp4")], lines
    assert all(("too large" in line.lower() or "no space" in line.lower() or "encoder" in line) for line in lines), lines
    assert list(tmp_path.iterdir()) == []  # no 0-byte file, no temporary left


def enospc(monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)


def test_cli_render_on_a_full_disk_is_one_line(tmp_path, monkeypatch):
    enospc(monkeypatch)
    out, video = tmp_path / "c.png", tmp_path / "c.gif"
    result = run("classviz", "--size", 32, "--steps", 2, "--out", out, "--video", video)
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert lines[-1] == f"error: could not write {out}: No space left on device; free some space or choose another --out"
    assert not any(line.startswith(("error", "note", "saved")) for line in lines[:-1])  # the rest is the bar
    assert list(tmp_path.iterdir()) == []


def test_cli_gallery_on_a_full_disk_is_one_line(tmp_path, monkeypatch):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.format(steps=1).replace("[1, 2, 3, 4, 5, 6, 7, 8]", "[1]"))
    enospc(monkeypatch)
    result = run("gallery", spec, "--out", tmp_path / "g")
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert result.output.strip().splitlines()[-1].startswith("error: could not write ")
    assert not [p for p in (tmp_path / "g").rglob("*") if p.is_file() and p.stat().st_size == 0]


def test_a_failed_write_keeps_the_existing_file(tmp_path, monkeypatch):
    path = tmp_path / "x.png"
    save_image(torch.zeros(3, 8, 8), path)
    before = path.read_bytes()
    enospc(monkeypatch)
    with pytest.raises(WriteError, match=f"could not write {path}: No space left"):
        save_image(torch.ones(3, 8, 8), path, overwrite=True)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["x.png"]
    with pytest.raises(WriteError):
        save_video([torch.ones(3, 8, 8)] * 2, tmp_path / "v.gif")
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]
