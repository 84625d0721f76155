"""The output folder: a content-addressed store of images shared by every snapshot,
per-snapshot staging and quarantine, and the manifests.

    DIR/images/ab/cd/<sha256>.<ext>      validated images, named by their content, shared
    DIR/index.sqlite                     URL -> stored image, for reuse without a request
    DIR/snapshots/<id>/manifest.json     one manifest per snapshot (the record of truth)
    DIR/snapshots/<id>/index.html        the same snapshot for a person, with thumbnails
    DIR/quarantine/<id>/<rank>-<name>    files of snapshot <id> that failed validation
    DIR/.staging/<id>/                   downloads waiting for validation (gone when it completes)
    DIR/.staging/<id>.lock               held while snapshot <id> runs
    DIR/.staging/.adoptable/<id>/        whole downloads of a run that died or ended early
    DIR/.lock                            shared by running snapshots, exclusive for prune
    DIR/.layout                          the layout's version: marks the folder as a store

A stored file is immutable: it appears by an atomic link of its whole, validated, synced
content under the name its sha256 gives, and only ``prune`` deletes it. The same bytes are
stored once whatever their URLs, and storing them again is a no-op, so concurrent runs and
retries cannot clash. Reading the store never follows a symbolic link.

Each whole download is journalled in its staging folder (URL, file, sha256, size). When a
run dies or ends early (cancelled, crashed), the next one adopts those files instead of
fetching them again: only downloads that were in flight at that moment are lost.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import hashlib
import json
import logging
import os
import re
import resource
import shutil
import stat
import threading
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gallery_snapshot.errors import StoreError

MAX_NAME_LENGTH = 120
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
# The shape of a name this module made; a name that only looks like one is hashed too, so an
# input can never take the name another input was given.
_HASHED = re.compile(r"-[0-9a-f]{12}(\.[A-Za-z0-9_-]{0,8})?$")
# File extensions of the stored formats (Pillow's names).
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp"}
logger = logging.getLogger(__name__)
STORED_PATH = re.compile(r"^images/([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})\.([a-z]{3,4})$")


def safe_component(text: str, *, fallback: str) -> str:
    """``text`` as one safe path component: ASCII letters, digits, ``.``, ``_``, ``-``; not
    starting with a dot; at most ``MAX_NAME_LENGTH`` characters. A name that had to change
    gets a hash of the original appended, so two different inputs never share a name."""
    ascii_text = unicodedata.normalize("NFKC", text)
    cleaned = _UNSAFE.sub("_", ascii_text).lstrip(".")
    if cleaned == text and 0 < len(cleaned) <= MAX_NAME_LENGTH and not _HASHED.search(cleaned):
        return cleaned
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    stem, dot, ext = cleaned.rpartition(".")
    if not dot or len(ext) > 8:
        stem, ext = cleaned, ""
    stem = stem.strip("._-")[: MAX_NAME_LENGTH - 30] or fallback
    return f"{stem}-{digest}.{ext}" if ext else f"{stem}-{digest}"


def stored_relpath(sha256: str, image_format: str) -> str:
    """Where the content ``sha256`` of Pillow format ``image_format`` is stored, relative to
    the output folder: ``images/ab/cd/<sha256>.jpg`` (two fan-out levels keep folders small)."""
    extension = EXTENSIONS.get(image_format.upper(), "bin")
    return f"images/{sha256[:2]}/{sha256[2:4]}/{sha256}.{extension}"


def is_stored_relpath(relpath: str, sha256: str | None = None) -> bool:
    """Whether ``relpath`` has the shape of a stored file (for ``sha256``, when given): what a
    manifest says is never trusted to point anywhere else."""
    match = STORED_PATH.match(relpath)
    if match is None:
        return False
    first, second, digest, _ = match.groups()
    return digest[:2] == first and digest[2:4] == second and sha256 in (None, digest)


JOURNAL_PREFIX = "received-"


@dataclass(frozen=True)
class Received:
    """A whole download waiting in staging."""

    path: Path
    sha256: str
    bytes: int


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


# What the store itself keeps at the top of the output folder; none may be a symbolic link.
OWN_ENTRIES = ("images", "snapshots", "quarantine", ".staging", ".lock", "index.sqlite")
LAYOUT_MARKER = ".layout"  # written by the first run (migration.upgrade_store)


def enclosing_store(path: Path) -> Path | None:
    """The root of a store that ``path`` lies below (a folder above it, links resolved,
    holding the layout marker), if any: such a path is the outer store's to delete (its
    staging is swept, its snapshots' folders pruned)."""
    for parent in Path(os.path.realpath(path)).parents:
        if (parent / LAYOUT_MARKER).is_file():
            return parent
    return None


def nested_store(place: str, outer: str) -> str:
    """Why ``place``, inside the store ``outer``, is refused: one line."""
    return (
        f"{place} is inside the store {outer}, whose next snapshot or prune may delete it: "
        "choose a place outside it"
    )


def storage_error(doing: str, exc: OSError) -> StoreError:
    """``doing`` (say, "cannot write to DIR") failed with ``exc``, as one line. Running out of
    open files is said as such: it is no disk problem, whatever the call that met it."""
    if exc.errno == errno.EMFILE:
        limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        return StoreError(
            f"too many open files: this process may open {limit} (ulimit -n); raise the "
            f"limit or use fewer workers ({doing})"
        )
    return StoreError(f"{doing}: {exc.strerror}")


class StoredFileProblem(Exception):
    """A stored file is missing, a symbolic link, unreadable, or not what it should be."""


class Store:
    """Paths and file operations of one output folder."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def staging_dir(self, snapshot_id: str) -> Path:
        return self.root / ".staging" / snapshot_id

    def quarantine_dir(self, snapshot_id: str) -> Path:
        return self.root / "quarantine" / snapshot_id

    def snapshot_dir(self, snapshot_id: str) -> Path:
        return self.root / "snapshots" / snapshot_id

    def manifest_path(self, snapshot_id: str) -> Path:
        return self.snapshot_dir(snapshot_id) / "manifest.json"

    @property
    def index_path(self) -> Path:
        return self.root / "index.sqlite"

    def prepare(self) -> None:
        """Create the folders, or fail with a clear error when the folder is not writable or
        one of its own entries is a symbolic link (which would lead writes out of it)."""
        for name in OWN_ENTRIES:
            if (self.root / name).is_symlink():
                raise StoreError(f"refusing {self.root / name}: it is a symbolic link")
        try:
            for sub in ("images", "snapshots", ".staging"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
            probe = self.root / ".staging" / f".probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise storage_error(f"cannot write to the output folder {self.root}", exc) from None

    @contextlib.contextmanager
    def store_lock(self, *, exclusive: bool) -> Iterator[None]:
        """Snapshots hold the store shared; prune and migration hold it alone, so they never
        delete or move what a live snapshot is about to reference."""
        self.prepare()
        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        try:
            lock = open(self.root / ".lock", "a+b")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise storage_error(f"cannot lock {self.root / '.lock'}", exc) from None
        with lock:
            try:
                fcntl.flock(lock, mode | fcntl.LOCK_NB)
            except BlockingIOError:
                logger.warning("waiting for the other runs in %s to finish", self.root)
                fcntl.flock(lock, mode)
            yield

    @contextlib.contextmanager
    def read_lock(self) -> Iterator[None]:
        """Hold the store shared for reading, creating nothing (for verify, which may run on
        a read-only copy): no prune can delete what is being read."""
        try:
            fd = os.open(self.root / ".lock", os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            yield  # no run has ever locked this folder
            return
        except OSError as exc:
            raise storage_error(f"cannot lock {self.root / '.lock'}", exc) from None
        with open(fd, "rb") as lock:
            fcntl.flock(lock, fcntl.LOCK_SH)
            yield

    @contextlib.contextmanager
    def snapshot_lock(self, snapshot_id: str) -> Iterator[Path]:
        """Hold the store (shared) and snapshot ``snapshot_id``'s lock and staging folder.
        When the snapshot completes, remove its staging folder and the dead runs' downloads
        it had the chance to adopt; when it ends early (cancelled, crashed, failed), set its
        whole downloads aside for the next run, as if it had died."""
        with self.store_lock(exclusive=False):
            lock_path = self.root / ".staging" / f"{snapshot_id}.lock"
            with open(lock_path, "a+b") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                staging = self.staging_dir(snapshot_id)
                staging.mkdir(exist_ok=True)
                try:
                    yield staging
                except BaseException:
                    self._set_aside(staging)
                    raise
                else:
                    shutil.rmtree(staging, ignore_errors=True)
                    # A concurrent run adopting from these at this moment falls back to
                    # downloading: a move either happened or finds no file.
                    shutil.rmtree(self._adoptable_root, ignore_errors=True)
                finally:
                    lock_path.unlink(missing_ok=True)

    @property
    def _adoptable_root(self) -> Path:
        return self.root / ".staging" / ".adoptable"

    def sweep_stale_staging(self) -> list[str]:
        """Set aside the staging folders of runs that died (their whole downloads, for
        adoption; the rest is removed); returns their snapshot ids."""
        swept: list[str] = []
        staging_root = self.root / ".staging"
        if not staging_root.is_dir():
            return swept
        for folder in staging_root.iterdir():
            if folder.is_symlink():  # planted: never followed, never adopted from
                folder.unlink()
                continue
            if not folder.is_dir() or folder == self._adoptable_root:
                continue
            lock_path = staging_root / f"{folder.name}.lock"
            try:
                with open(lock_path, "rb") as lock:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    self._set_aside(folder)
                    lock_path.unlink(missing_ok=True)
            except FileNotFoundError:
                self._set_aside(folder)
            except BlockingIOError:
                continue  # a live run holds it
            swept.append(folder.name)
        return swept

    def _set_aside(self, folder: Path) -> None:
        if any(folder.glob(f"{JOURNAL_PREFIX}*")):
            self._adoptable_root.mkdir(exist_ok=True)
            with contextlib.suppress(OSError):  # set aside by a concurrent run already
                os.replace(folder, self._adoptable_root / folder.name)
                return
        shutil.rmtree(folder, ignore_errors=True)

    def adoptable(self) -> dict[str, Received]:
        """Whole downloads of dead runs, by URL."""
        return self._journalled(self._adoptable_root.glob(f"*/{JOURNAL_PREFIX}*"))

    def kept_downloads(self, snapshot_id: str) -> int:
        """How many whole downloads of snapshot ``snapshot_id``, which ended early, wait for
        the next run (its journals also name the files it went on to store)."""
        journals = (self._adoptable_root / snapshot_id).glob(f"{JOURNAL_PREFIX}*")
        return sum(1 for received in self._journalled(journals).values() if received.path.exists())

    @staticmethod
    def _journalled(journals: Iterator[Path]) -> dict[str, Received]:
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

    def adopt(self, received: Received, target: Path) -> bool:
        """Move a dead run's download to ``target`` once it proves whole; False when it
        does not (or a concurrent run took it first)."""
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

    def stored_path(self, relpath: str) -> Path:
        """The absolute path of a stored file, refusing any path but a stored file's shape."""
        if not is_stored_relpath(relpath):
            raise StoredFileProblem(f"not a path of the store: {relpath!r}")
        return self.root / relpath

    @functools.cached_property
    def _real_images(self) -> str:
        return os.path.realpath(self.root / "images")

    def _fan_out_folder(self, folder: Path) -> None:
        """Make ``images/ab/cd`` without following a link: a link planted in the store's
        place is replaced by a real folder (what it pointed at is left alone)."""
        (self.root / "images").mkdir(parents=True, exist_ok=True)
        for level in (folder.parent, folder):
            if level.is_symlink():
                logger.warning("replacing %s: a symbolic link in the store", level)
                level.unlink()
            level.mkdir(exist_ok=True)
        self._check_folder(folder)

    def _check_folder(self, folder: Path) -> None:
        """Refuse a fan-out folder that is, or lies behind, a symbolic link out of the store."""
        if os.path.realpath(folder) != os.path.join(self._real_images, *folder.parts[-2:]):
            raise StoredFileProblem(f"{self.relative(folder)} is a symbolic link")

    def read_stored(self, relpath: str, *, sha256: str, size: int | None = None) -> None:
        """Check that the stored file ``relpath`` is a regular file (no symbolic link) with
        ``sha256`` (and ``size``); raise StoredFileProblem saying what is wrong."""
        if not is_stored_relpath(relpath, sha256):
            raise StoredFileProblem(f"{relpath!r} is not the stored path of sha256 {sha256}")
        path = self.root / relpath
        try:
            info = path.lstat()
        except FileNotFoundError:
            raise StoredFileProblem(f"{relpath} is missing") from None
        except OSError as exc:
            raise StoredFileProblem(f"{relpath} is unreadable: {exc.strerror}") from None
        if stat.S_ISLNK(info.st_mode):
            raise StoredFileProblem(f"{relpath} is a symbolic link")
        if not stat.S_ISREG(info.st_mode):
            raise StoredFileProblem(f"{relpath} is not a regular file")
        if size is not None and info.st_size != size:
            raise StoredFileProblem(f"{relpath} has {info.st_size} bytes, not {size}")
        self._check_folder(path.parent)
        try:
            actual = sha256_of(path)
        except OSError as exc:
            raise StoredFileProblem(f"{relpath} is unreadable: {exc.strerror}") from None
        if actual != sha256:
            raise StoredFileProblem(f"{relpath} has sha256 {actual}, not {sha256}")

    def commit(
        self, staged: Path, *, sha256: str, image_format: str, keep_source: bool = False
    ) -> str:
        """Store a validated, synced file under its content's name; return the stored path,
        relative to the output folder. Idempotent: when the content is stored already, the
        staged copy is dropped (kept with ``keep_source``). A stored copy that is damaged (or
        a symbolic link planted in its place) is replaced by the good one."""
        relpath = stored_relpath(sha256, image_format)
        final = self.root / relpath
        self._fan_out_folder(final.parent)
        os.chmod(staged, 0o444)  # stored files are never written again
        try:
            os.link(staged, final)
        except FileExistsError:
            try:
                self.read_stored(relpath, sha256=sha256)
            except StoredFileProblem:
                if final.is_dir() and not final.is_symlink():
                    shutil.rmtree(final)  # planted: no image is a folder
                # An atomic repair (readers see the old file or the good one).
                repair = final.with_name(f".{final.name}.{os.getpid()}.repair")
                os.link(staged, repair)
                os.replace(repair, final)
        if not keep_source:
            staged.unlink(missing_ok=True)
        return relpath

    def quarantine(self, staged: Path, snapshot_id: str) -> Path:
        """Move a file of this snapshot's staging that failed validation into quarantine."""
        target = self.quarantine_dir(snapshot_id) / staged.name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, target)
        return target


def sync_filesystem(path: Path) -> None:
    """Make everything written to ``path``'s filesystem durable: one ``syncfs`` for a whole
    batch instead of an fsync per file (``os.sync`` where there is no ``syncfs``)."""
    libc = _libc()
    if libc is None:
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.syncfs(fd) != 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error), str(path))
    finally:
        os.close(fd)


@functools.cache
def _libc() -> Any:
    # The C library the interpreter already has loaded. (``ctypes.util.find_library`` would
    # start ``ldconfig -p``, a fork of the whole flow process that Linux then counts as a child
    # as large as the flow: 774 MB of a 100,000-image snapshot's measured peak.)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    return libc if hasattr(libc, "syncfs") else None


def open_regular(path: Path) -> int:
    """A descriptor of ``path`` for reading, refusing a symbolic link (ELOOP) and anything
    but a regular file (a FIFO would block the reader forever)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    return fd


def sha256_of(path: Path) -> str:
    """The sha256 of a regular file, never through a symbolic link."""
    digest = hashlib.sha256()
    with open(open_regular(path), "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise storage_error(f"cannot write {path}", exc) from None
