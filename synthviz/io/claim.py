"""Claiming an output before the work that fills it, so two runs given the same ``--out`` at once
cannot both say "saved" while one result is lost: the second is refused at its start.

A claim is a small file holding the owner's pid (``OUT/.synthviz-claim`` for a folder,
``.NAME.claim`` beside a file), locked with ``flock`` while the run lives. The kernel drops the
lock when its process dies, however it dies, so the claim of a killed run (SIGKILL, a crash) is
stale at once and the next run takes it over. Without ``flock`` (Windows) the file is created
exclusively and a claim whose pid no longer runs counts as stale::

    with claim_folder(out, holds=("metrics.csv", "index.html"), overwrite=overwrite, what="a report"):
        ...  # the work, then the writes into out
    with claim_file("out.mp4") as claim:          # claim.path: out.mp4, or out-1.mp4 if that is taken
        write_file(claim.path, encode, overwrite=True)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import SynthvizError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

FOLDER_CLAIM = ".synthviz-claim"


class OutputClaim:
    """An output (``path``: a folder or a file) held by this process until :meth:`release`; a
    context manager that releases on exit, whether the work finished or failed."""

    def __init__(self, path: Path, lock: Path, fd: int, created: bool = False):
        self.path, self.lock, self._fd, self._created = path, lock, fd, created

    def release(self) -> None:
        """Give the output back: remove the claim file (and the claimed folder if this claim made
        it and nothing was written into it)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.lock)  # still locked: a run waiting on this file sees it gone and retries
        os.close(self._fd)
        self._fd = None
        if self._created:
            with contextlib.suppress(OSError):
                self.path.rmdir()  # only when empty

    def __enter__(self) -> "OutputClaim":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process, or no way to ask: assume it runs
        return True
    return True


def _owner(text: str) -> str:
    pid = text.split()[0] if text.split() else ""
    return f"pid {pid}" if pid.isdigit() else "another process"


def _take_flock(lock: Path) -> tuple[int | None, str]:
    """(fd, "") holding ``lock``'s flock, or (None, owner) when a live process holds it."""
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = _owner(os.read(fd, 100).decode(errors="replace"))
            os.close(fd)
            return None, owner
        try:  # released and removed between our open and our lock: take the new file instead
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd, ""
        os.close(fd)


def _take_exclusive(lock: Path) -> tuple[int | None, str]:
    """Without flock: create ``lock`` exclusively; a claim whose pid is gone is taken over."""
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            text = lock.read_text(errors="replace") if lock.exists() else ""
            pid = text.split()[0] if text.split() else ""
            if pid.isdigit() and not _alive(int(pid)):
                with contextlib.suppress(OSError):
                    lock.unlink()
                continue
            return None, _owner(text)
        os.write(fd, f"{os.getpid()}\n".encode())
        return fd, ""
    return None, "another process"


def _take(lock: Path) -> tuple[int | None, str]:
    try:
        return _take_flock(lock) if fcntl is not None else _take_exclusive(lock)
    except OSError as e:
        raise SynthvizError(f"cannot write into {lock.parent} ({e.strerror or e}); choose a writable --out") from None


def claim_folder(folder: str | os.PathLike, holds: Sequence[str] = (), overwrite: bool = False,
                 what: str = "output") -> OutputClaim:
    """Claim output folder ``folder`` (made if missing) for this run. Refused with one line when
    another live run holds it, or (unless ``overwrite``) when it already holds one of the files
    ``holds`` (``what`` names them in the message)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise SynthvizError(f"--out {folder} is a file; give a folder")
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        raise SynthvizError(f"cannot create folder {folder}; choose a writable --out") from None
    fd, owner = _take(folder / FOLDER_CLAIM)
    if fd is None:
        raise SynthvizError(f"{folder} is being written by another synthviz run ({owner}); "
                            "wait for it to finish or pass another --out")
    claim = OutputClaim(folder, folder / FOLDER_CLAIM, fd, created)
    found = [name for name in holds if (folder / name).exists()]
    if found and not overwrite:
        claim.release()
        raise SynthvizError(f"{folder} already holds {what} ({', '.join(found)}); pass --overwrite or another --out")
    return claim


def claim_file(path: str | os.PathLike, overwrite: bool = False) -> OutputClaim:
    """Claim output file ``path`` for this run: ``path`` itself, or (as :func:`~synthviz.io.free_path`
    names them) the first of ``name-1.ext``, ``name-2.ext``... that neither exists (unless
    ``overwrite``) nor is claimed by another live run. With ``overwrite``, ``path`` claimed by
    another run is refused with one line."""
    path = Path(path)
    for i in range(10_000):
        candidate = path if i == 0 else path.with_name(f"{path.stem}-{i}{path.suffix}")
        if candidate.exists() and not overwrite:
            continue
        fd, owner = _take(candidate.with_name(f".{candidate.name}.claim"))
        if fd is None:
            if overwrite:
                raise SynthvizError(f"{candidate} is being written by another synthviz run ({owner}); "
                                    "wait for it to finish or choose another --out")
            continue
        claim = OutputClaim(candidate, candidate.with_name(f".{candidate.name}.claim"), fd)
        if candidate.exists() and not overwrite:  # finished by another run meanwhile
            claim.release()
            continue
        return claim
    raise SynthvizError(f"no free name for {path}; choose another --out")
