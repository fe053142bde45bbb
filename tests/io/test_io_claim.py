"""Claiming an output (issue 26): a folder or file claimed by one run is refused to a second at
once; a claim dies with its process (SIGKILL included)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from synthviz.errors import SynthvizError
from synthviz.io import claim_file, claim_folder
from synthviz.io.claim import FOLDER_CLAIM

from clihelp import ENV


def test_a_claimed_folder_is_refused_to_a_second_claim_until_released(tmp_path):
    out = tmp_path / "report"
    first = claim_folder(out, holds=("metrics.csv",), what="a report")
    assert out.is_dir() and (out / FOLDER_CLAIM).read_text().strip() == str(os.getpid())
    with pytest.raises(SynthvizError, match=r"being written by another synthviz run \(pid \d+\).*another --out"):
        claim_folder(out, holds=("metrics.csv",))
    (out / "metrics.csv").write_text("x")
    first.release()
    assert not (out / FOLDER_CLAIM).exists()
    with pytest.raises(SynthvizError, match=r"already holds a report \(metrics.csv\); pass --overwrite or another --out"):
        claim_folder(out, holds=("metrics.csv",), what="a report")
    with claim_folder(out, holds=("metrics.csv",), overwrite=True) as again:  # the refusal left no claim behind
        assert again.path == out
    assert not (out / FOLDER_CLAIM).exists()


def test_a_folder_the_claim_made_is_removed_when_nothing_was_written(tmp_path):
    with claim_folder(tmp_path / "new" / "deeper"):
        pass
    assert not (tmp_path / "new" / "deeper").exists() and (tmp_path / "new").is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(SynthvizError, match="is a file; give a folder"):
        claim_folder(tmp_path / "file")


def test_the_claim_of_a_killed_run_is_stale_at_once(tmp_path):
    out = tmp_path / "report"
    holder = textwrap.dedent(f"""
        import sys, time
        from synthviz.io import claim_folder
        claim = claim_folder({str(out)!r})
        print("claimed", flush=True)
        time.sleep(120)
    """)
    proc = subprocess.Popen([sys.executable, "-c", holder], env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "claimed"
        with pytest.raises(SynthvizError, match=f"pid {proc.pid}"):
            claim_folder(out)
        proc.kill()  # SIGKILL: no cleanup runs, the claim file stays
        proc.wait(timeout=30)
        assert (out / FOLDER_CLAIM).exists()
        with claim_folder(out) as claim:  # the kernel dropped the dead run's lock
            assert (out / FOLDER_CLAIM).read_text().strip() != str(proc.pid)
            assert claim.path == out
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_claim_file_takes_the_next_free_name_and_refuses_an_overwrite_of_a_claimed_one(tmp_path):
    path = tmp_path / "out.mp4"
    first = claim_file(path)
    assert first.path == path and not path.exists()  # nothing written under the real name yet
    second = claim_file(path)
    assert second.path == tmp_path / "out-1.mp4"
    with pytest.raises(SynthvizError, match="out.mp4 is being written by another synthviz run"):
        claim_file(path, overwrite=True)
    path.write_bytes(b"done")
    first.release()
    with claim_file(path) as third:  # out.mp4 exists, out-1.mp4 is claimed
        assert third.path == tmp_path / "out-2.mp4"
    second.release()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]  # no claim file left


def test_without_flock_a_claim_is_an_exclusive_file_and_a_dead_pid_is_stale(tmp_path, monkeypatch):
    import synthviz.io.claim as claim_module

    monkeypatch.setattr(claim_module, "fcntl", None)  # as on Windows
    out = tmp_path / "report"
    first = claim_folder(out)
    with pytest.raises(SynthvizError, match=f"pid {os.getpid()}"):
        claim_folder(out)
    first.release()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    out.mkdir()
    (out / FOLDER_CLAIM).write_text(dead.stdout)  # left by a run that has exited
    with claim_folder(out):
        assert (out / FOLDER_CLAIM).read_text().strip() == str(os.getpid())
