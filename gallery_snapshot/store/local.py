"""The store in a local folder: the layout of ``layout.py`` under DIR, plus

    DIR/.staging/…                       staging and the downloads of dead runs (staging.py)
    DIR/.lock                            shared by running snapshots, exclusive for prune

A stored file is immutable: it appears by an atomic link of its whole, validated, synced
content under the name its sha256 gives, and only ``prune`` deletes it. The same bytes are
stored once whatever their URLs, and storing them again is a no-op, so concurrent runs and
retries cannot clash. Reading the store never follows a symbolic link.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from gallery_snapshot.errors import StoreError
from gallery_snapshot.models import ImageRecord, StoredImage
from gallery_snapshot.store import layout
from gallery_snapshot.store.contract import Download, Placed, StoredFileProblem
from gallery_snapshot.store.files import (
    open_regular,
    regular_entries,
    sha256_of,
    storage_error,
    sync_filesystem,
    write_atomically,
)
from gallery_snapshot.store.sqlite_index import SqliteIndex
from gallery_snapshot.store.staging import (
    ADOPTABLE,
    JOURNAL_PREFIX,
    STAGING,
    LocalStaging,
    journalled,
    set_aside,
    sweep_stale_staging,
)

logger = logging.getLogger(__name__)


def enclosing_store(path: Path) -> Path | None:
    """The root of a store that ``path`` lies below (a folder above it, links resolved,
    holding the layout marker), if any: such a path is the outer store's to delete (its
    staging is swept, its snapshots' folders pruned)."""
    for parent in Path(os.path.realpath(path)).parents:
        if (parent / layout.LAYOUT_MARKER).is_file():
            return parent
    return None


class LocalStore:
    """One output folder."""

    durable_puts = False  # a batch's files are synced at once, then indexed
    verify_threads = min(8, 2 * (os.cpu_count() or 1))
    browsable = True

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()
        self.name = str(self.root)
        self.index = SqliteIndex(self.index_path)

    def __repr__(self) -> str:
        return f"LocalStore({self.name!r})"

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def staging_dir(self, snapshot_id: str) -> Path:
        return self.root / STAGING / snapshot_id

    def quarantine_dir(self, snapshot_id: str) -> Path:
        return self.root / layout.quarantine_folder(snapshot_id)

    def snapshot_dir(self, snapshot_id: str) -> Path:
        return self.root / layout.snapshot_folder(snapshot_id)

    @property
    def index_path(self) -> Path:
        return self.root / layout.INDEX_FILE

    # Opening.

    def prepare(self) -> None:
        """Create the folders, or fail with a clear error when the folder is not writable or
        one of its own entries is a symbolic link (which would lead writes out of it)."""
        for name in layout.OWN_ENTRIES:
            if (self.root / name).is_symlink():
                raise StoreError(f"refusing {self.root / name}: it is a symbolic link")
        try:
            for sub in (layout.IMAGES, layout.SNAPSHOTS, STAGING):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
            probe = self.root / STAGING / f".probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise storage_error(f"cannot write to the output folder {self.root}", exc) from None

    def check_access(self) -> None:
        self.prepare()

    def ready_for_snapshot(self) -> None:
        # Imported here: the migration reads manifests, whose module opens stores.
        from gallery_snapshot.store.migration import upgrade_store

        upgrade_store(self)  # migrates an older layout, rebuilds a missing URL index

    def open_existing(self, *, upgrade: bool) -> None:
        from gallery_snapshot.store.migration import needs_migration, upgrade_store

        if not self.has_snapshots():
            raise StoreError(f"{self.root} holds no snapshots")
        if upgrade:
            upgrade_store(self)
        elif needs_migration(self):
            raise StoreError(
                f"{self.root} has the old layout (images/<host>/<name>): the next snapshot "
                "or prune migrates it"
            )

    # Files of the store.

    def location(self, relpath: str) -> str:
        return os.path.join(self.name, *relpath.split("/"))

    def read(self, relpath: str) -> bytes:
        """A file of the store, never read through a link (nor a linked folder)."""
        path = self.root / relpath
        for folder in path.relative_to(self.root).parents[:-1]:  # below the root
            if (self.root / folder).is_symlink():
                raise StoreError(f"{self.root / folder} is a symbolic link")
        with open(open_regular(path), "rb") as handle:
            return handle.read()

    def write(self, relpath: str, data: bytes) -> str:
        path = self.root / relpath
        write_atomically(path, data)
        return str(path)

    def has_snapshots(self) -> bool:
        return bool(self.snapshot_ids())

    def snapshot_ids(self) -> list[str]:
        """Folders holding a manifest, and links in a snapshot folder's place (reading them
        fails: a link is never followed)."""
        snapshots = self.root / layout.SNAPSHOTS
        if not snapshots.is_dir() or snapshots.is_symlink():
            return []
        return [
            folder.name
            for folder in snapshots.iterdir()
            if folder.is_symlink() or (folder.is_dir() and _exists(folder / layout.MANIFEST_NAME))
        ]

    def delete_snapshot(self, snapshot_id: str) -> None:
        folder = self.snapshot_dir(snapshot_id)
        (folder / layout.MANIFEST_NAME).unlink()  # first the record, then what it described
        shutil.rmtree(folder, ignore_errors=True)
        quarantine = self.quarantine_dir(snapshot_id)
        if quarantine.is_symlink():
            quarantine.unlink()
        else:
            shutil.rmtree(quarantine, ignore_errors=True)

    # Locks.

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

    def prune_lock(self) -> contextlib.AbstractContextManager[None]:
        return self.store_lock(exclusive=True)

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

    def confirm_alone(self) -> None:
        pass  # the exclusive flock held since the prune began says so

    def settle(self, snapshot_id: str, records: list[ImageRecord]) -> list[ImageRecord]:
        return records  # no prune ran: the shared flock kept it out

    @contextlib.contextmanager
    def snapshot_lock(self, snapshot_id: str) -> Iterator[Path]:
        """Hold the store (shared) and snapshot ``snapshot_id``'s lock and staging folder.
        When the snapshot completes, remove its staging folder and the dead runs' downloads
        it had the chance to adopt; when it ends early (cancelled, crashed, failed), set its
        whole downloads aside for the next run, as if it had died."""
        with self.store_lock(exclusive=False):
            lock_path = self.root / STAGING / f"{snapshot_id}.lock"
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

    # Staging.

    @property
    def _adoptable_root(self) -> Path:
        return self.root / STAGING / ADOPTABLE

    @contextlib.contextmanager
    def batch_staging(self, snapshot_id: str) -> Iterator[LocalStaging]:
        staging = LocalStaging(self.staging_dir(snapshot_id), self._adoptable_root)
        staging.folder.mkdir(parents=True, exist_ok=True)
        try:
            yield staging
        finally:
            staging.journal.close()

    def sweep_stale_staging(self) -> list[str]:
        return sweep_stale_staging(self.root / STAGING)

    def _set_aside(self, folder: Path) -> None:
        set_aside(folder, self._adoptable_root)

    def kept_downloads(self, snapshot_id: str) -> int:
        """How many whole downloads of snapshot ``snapshot_id``, which ended early, wait for
        the next run (its journals also name the files it went on to store)."""
        journals = (self._adoptable_root / snapshot_id).glob(f"{JOURNAL_PREFIX}*")
        return sum(1 for received in journalled(journals).values() if received.path.exists())

    # Images.

    @functools.cached_property
    def _real_images(self) -> str:
        return os.path.realpath(self.root / layout.IMAGES)

    def _fan_out_folder(self, folder: Path) -> None:
        """Make ``images/ab/cd`` without following a link: a link planted in the store's
        place is replaced by a real folder (what it pointed at is left alone)."""
        (self.root / layout.IMAGES).mkdir(parents=True, exist_ok=True)
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

    def check_stored(self, relpath: str, *, sha256: str, size: int | None = None) -> None:
        """Check that the stored file ``relpath`` is a regular file (no symbolic link) with
        ``sha256`` (and ``size``); raise StoredFileProblem saying what is wrong."""
        if not layout.is_stored_relpath(relpath, sha256):
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

    def confirm_reuse(self, image: StoredImage) -> None:
        """The index holds no truth of its own: the file is read and hashed before reuse."""
        relpath = layout.stored_relpath(image.sha256, image.format)
        self.check_stored(relpath, sha256=image.sha256, size=image.bytes)

    def commit(
        self, staged: Path, *, sha256: str, image_format: str, keep_source: bool = False
    ) -> str:
        """Store a validated, synced file under its content's name; return the stored path,
        relative to the output folder. Idempotent: when the content is stored already, the
        staged copy is dropped (kept with ``keep_source``). A stored copy that is damaged (or
        a symbolic link planted in its place) is replaced by the good one."""
        relpath = layout.stored_relpath(sha256, image_format)
        final = self.root / relpath
        self._fan_out_folder(final.parent)
        os.chmod(staged, 0o444)  # stored files are never written again
        try:
            os.link(staged, final)
        except FileExistsError:
            try:
                self.check_stored(relpath, sha256=sha256)
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

    def put_image(
        self, download: Download, *, sha256: str, image_format: str, keep_source: bool = False
    ) -> Placed:
        if isinstance(download, Path):
            return Placed(
                self.commit(
                    download, sha256=sha256, image_format=image_format, keep_source=keep_source
                )
            )
        with tempfile.TemporaryDirectory(dir=self.root / STAGING) as scratch:
            staged = Path(scratch, "image")
            staged.write_bytes(download)
            return Placed(self.commit(staged, sha256=sha256, image_format=image_format))

    def quarantine(self, download: Download, snapshot_id: str, name: str) -> str:
        """Move (or write) a download that failed validation into quarantine."""
        target = self.quarantine_dir(snapshot_id) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(download, Path):
            os.replace(download, target)
        else:
            target.write_bytes(download)
        return self.relative(target)

    def sync(self) -> None:
        sync_filesystem(self.root)

    def stored_files(self) -> Iterator[tuple[str, int]]:
        """Files (and links) two fan-out levels down, never descending through a link."""
        for path in regular_entries(self.root / layout.IMAGES, depth=2):
            relpath = self.relative(path)
            if layout.STORED_PATH.match(relpath):
                yield relpath, path.lstat().st_size

    def delete_images(self, relpaths: Iterable[str]) -> None:
        for relpath in relpaths:
            path = self.root / relpath
            path.unlink()
            for folder in (path.parent, path.parent.parent):
                with contextlib.suppress(OSError):  # not empty: other files live there
                    folder.rmdir()


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()
