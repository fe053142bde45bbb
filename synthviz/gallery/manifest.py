"""The resumable manifest of a gallery: finished and failed items, journaled."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ..errors import SynthvizError
from ..errors import WriteError
from ..io import write_file
from .spec import Item


class Manifest:
    """``OUT/manifest.json``: every finished (or failed) item by id.

    Each finished item is appended at once to a journal (``.manifest.journal``, one JSON line,
    fsynced); the manifest itself is rewritten atomically at most every ``save_every`` seconds
    and at the end, then the journal is emptied. Loading merges both (a torn last journal line,
    from a kill mid-append, is ignored), so nothing finished is ever lost and a gallery of tens of
    thousands of items does not rewrite a growing file after every item.
    """

    def __init__(self, out: Path, save_every: float = 2.0):
        self.path = Path(out) / "manifest.json"
        self.journal = Path(out) / ".manifest.journal"
        self.save_every = save_every
        self.items: dict[str, dict] = {}
        self.title = ""
        self._saved = time.monotonic()
        for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):  # left by a process killed mid-write
            stale.unlink(missing_ok=True)
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text())
                self.items = dict(data["items"])
                self.title = data.get("title", "")
            except (ValueError, KeyError, TypeError):
                raise SynthvizError(f"manifest {self.path} is unreadable; delete it to render the gallery again "
                                    "from scratch") from None
        if self.journal.exists():
            for line in self.journal.read_text().splitlines():
                try:
                    entry = json.loads(line)
                    self.items[entry["id"]] = entry
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a kill: its files are re-rendered

    def done(self, item: Item, out: Path) -> bool:
        entry = self.items.get(item.id)
        return bool(entry and entry.get("status") == "done" and all((out / f).exists() for f in entry.get("paths", [])))

    def record(self, entry: dict) -> None:
        self.items[entry["id"]] = entry
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(self.journal, "a") as f:
                f.write(json.dumps(entry, allow_nan=False) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:  # a torn last line is ignored on load (see above)
            raise WriteError(f"could not write {self.journal}: {e.strerror or e}; free some space") from None
        if time.monotonic() - self._saved >= self.save_every:
            self.save()

    def save(self) -> None:
        write_file(self.path, overwrite=True, data=json.dumps({"title": self.title, "items": self.items}, indent=1, allow_nan=False))
        self.journal.unlink(missing_ok=True)
        self._saved = time.monotonic()
