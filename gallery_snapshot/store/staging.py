"""A folder store's staging: where a batch's downloads wait for validation, the journal of its
whole downloads, and the downloads of runs that died or ended early, adopted by the next run
instead of being fetched again (only downloads in flight at that moment are lost).

    DIR/.staging/<id>/                   downloads waiting for validation (gone when it completes)
    DIR/.staging/<id>.lock               held while snapshot <id> runs
    DIR/.staging/.adoptable/<id>/        whole downloads of a run that died or ended early
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import stat
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from gallery_snapshot.models import FetchResult
from gallery_snapshot.store.contract import Received
from gallery_snapshot.store.files import safe_component, sha256_of

JOURNAL_PREFIX = "received-"
STAGING = ".staging"
ADOPTABLE = ".adoptable"


class ReceivedJournal:
    """The journal of one batch's whole downloads, appended line by line from its threads
    (an ``O_APPEND`` write of one short line is atomic); created on the first line."""

    def __init__(self, staging: Path) -> None:
        self._path = staging / f"{JOURNAL_PREFIX}{uuid.uuid4().hex}.jsonl"
        self._fd: int | None = None
        self._opening = threading.Lock()

    def record(self, url: str, received: Received) -> None:
        entry = {"url": url, "file": received.path.name, "sha256": received.sha256}
        line = json.dumps({**entry, "bytes": received.bytes}) + "\n"
        with self._opening:
            if self._fd is None:
                self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.write(self._fd, line.encode("utf-8", "surrogatepass"))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)


def journalled(journals: Iterable[Path]) -> dict[str, Received]:
    """The downloads ``journals`` record, by URL (a journal's torn last line is ignored)."""
    found: dict[str, Received] = {}
    for journal in sorted(journals):
        if journal.parent.is_symlink() or journal.is_symlink():
            continue
        with contextlib.suppress(OSError):
            for line in journal.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    entry = json.loads(line)
                    found[entry["url"]] = Received(
                        path=journal.parent / safe_component(entry["file"], fallback="x"),
                        sha256=str(entry["sha256"]),
                        bytes=int(entry["bytes"]),
                    )
    return found


def adoptable_downloads(adoptable_root: Path) -> dict[str, Received]:
    """Whole downloads of dead runs, by URL."""
    return journalled(adoptable_root.glob(f"*/{JOURNAL_PREFIX}*"))


def adopt(received: Received, target: Path) -> bool:
    """Move a dead run's download to ``target`` once it proves whole; False when it does not
    (or a concurrent run took it first)."""
    try:
        info = received.path.lstat()
        if not stat.S_ISREG(info.st_mode) or info.st_size != received.bytes:
            return False
        if sha256_of(received.path) != received.sha256:
            return False
        os.replace(received.path, target)
    except OSError:
        return False
    return True


def sweep_stale_staging(staging_root: Path) -> list[str]:
    """Set aside the staging folders of runs that died (their whole downloads, for adoption;
    the rest is removed); returns their snapshot ids."""
    swept: list[str] = []
    if not staging_root.is_dir():
        return swept
    adoptable_root = staging_root / ADOPTABLE
    for folder in staging_root.iterdir():
        if folder.is_symlink():  # planted: never followed, never adopted from
            folder.unlink()
            continue
        if not folder.is_dir() or folder == adoptable_root:
            continue
        lock_path = staging_root / f"{folder.name}.lock"
        try:
            with open(lock_path, "rb") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                set_aside(folder, adoptable_root)
                lock_path.unlink(missing_ok=True)
        except FileNotFoundError:
            set_aside(folder, adoptable_root)
        except BlockingIOError:
            continue  # a live run holds it
        swept.append(folder.name)
    return swept


def set_aside(folder: Path, adoptable_root: Path) -> None:
    """Keep a staging folder's whole downloads for the next run; remove it otherwise."""
    if any(folder.glob(f"{JOURNAL_PREFIX}*")):
        adoptable_root.mkdir(exist_ok=True)
        with contextlib.suppress(OSError):  # set aside by a concurrent run already
            os.replace(folder, adoptable_root / folder.name)
            return
    shutil.rmtree(folder, ignore_errors=True)


@dataclass
class LocalStaging:
    """A batch's staging in the store's own folder, journalled."""

    folder: Path
    adoptable_root: Path
    journal: ReceivedJournal = field(init=False)

    def __post_init__(self) -> None:
        self.journal = ReceivedJournal(self.folder)

    def adoptable(self) -> dict[str, Received]:
        return adoptable_downloads(self.adoptable_root)

    def adopt(self, received: Received, target: Path) -> bool:
        return adopt(received, target)

    def record(self, url: str, received: Received) -> None:
        self.journal.record(url, received)

    def handed_on(self, result: FetchResult) -> FetchResult:
        return result  # the validation step reads the staged file where it lies


@dataclass
class ScratchStaging:
    """A batch's staging in a scratch folder of this worker, gone when the batch returns: its
    downloads travel on as bytes in the batch's result (no task may read another's disk: a
    Dask worker on another machine, a container gone with its run). Nothing to adopt."""

    folder: Path

    def adoptable(self) -> dict[str, Received]:
        return {}

    def adopt(self, received: Received, target: Path) -> bool:
        return False

    def record(self, url: str, received: Received) -> None:
        pass

    def handed_on(self, result: FetchResult) -> FetchResult:
        if result.status != "fetched" or result.path is None:
            return result
        return result.model_copy(update={"content": Path(result.path).read_bytes(), "path": None})
