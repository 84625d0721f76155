"""The store on object storage: the layout of ``layout.py`` under ``s3://BUCKET/PREFIX`` (and
``gs://``, ``az://``, ``file://``), so the same manifests and paths describe both backends.
Images are put by one PUT of their whole, validated content each (an object store has no
rename, and a content name never needs one); ``snapshots/<id>/manifest.json`` is written last.
The URL index is ``object_index.py``; locks are refreshed lock objects under ``locks/`` (an
object store has no lock that dies with its process, as flock does).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from gallery_snapshot.errors import ConfigError, StoreError
from gallery_snapshot.models import ImageRecord, StoredImage
from gallery_snapshot.store import layout
from gallery_snapshot.store.contract import Download, Placed, StoredFileProblem, nested_store
from gallery_snapshot.store.object_client import ObjectClient, ObjectExists
from gallery_snapshot.store.object_index import ObjectIndex, stored_images
from gallery_snapshot.store.staging import ScratchStaging

LOCK_PREFIX = layout.LOCK_PREFIX
PRUNE_LOCK = layout.PRUNE_LOCK
# A live lock is put again every LOCK_REFRESH; one not refreshed for STALE_LOCK is a killed
# run's leftover.
LOCK_REFRESH = timedelta(minutes=1)
STALE_LOCK = timedelta(minutes=10)
PRUNE_POLL_SECONDS = 2.0
# The lock keys this tool writes (snapshot ids are letters, digits and dashes); anything
# else under locks/ is someone else's and blocks nothing.
_LOCK_KEY = re.compile(r"^locks/(?:prune|snapshot-[A-Za-z0-9-]{1,64})$")


class ObjectStore(ObjectClient):
    """One output location on object storage."""

    durable_puts = True  # each PUT is whole and durable when it returns
    verify_threads = 16  # requests wait on the network, not the CPU
    browsable = False

    def __init__(self, url: str, *, create: bool = True) -> None:
        super().__init__(url, create=create)
        self.name = self.url
        self.index = ObjectIndex(self)

    def __repr__(self) -> str:
        return f"ObjectStore({self.url!r})"

    # Opening.

    def check_access(self) -> None:
        """One LIST request: wrong credentials, a missing bucket or an unreachable endpoint
        stop the run here, before anything is written. Before it, ConfigError for a place
        among another store's own entries (``s3://b/p/snapshots/x`` when ``s3://b/p`` is a
        store), which that store's next prune would delete."""
        if (outer := self.enclosing_store()) is not None:
            raise ConfigError(nested_store(self.url, outer))
        for _ in self.listing(LOCK_PREFIX):
            break

    def enclosing_store(self) -> str | None:
        """The URL of a store this one lies among the own entries of, if any: one LIST for
        each prefix above followed by a store's entry name (usually one at most). A prefix
        holding ``snapshots/`` and ``index/`` is a store; one that cannot be listed (a
        policy granting this prefix only) is taken for none."""
        parts = urlsplit(self.url)
        names = parts.path.strip("/").split("/")
        for depth in range(len(names) - 1, -1, -1):
            if names[depth] not in layout.OWN_PREFIXES:
                continue
            above = f"{parts.scheme}://{parts.netloc}/{'/'.join(names[:depth])}"
            try:
                candidate = type(self)(above, create=False)
                top = candidate.top_prefixes()
            except (ValueError, StoreError):  # the file system's root, an unlistable bucket
                continue
            if {"snapshots/", "index/"} <= top:
                return candidate.url
        return None

    def ready_for_snapshot(self) -> None:
        self.check_access()  # wrong credentials or a missing bucket: stop before any write

    def open_existing(self, *, upgrade: bool) -> None:
        self.check_access()
        if not self.has_snapshots():
            raise StoreError(f"{self.url} holds no snapshots")

    # Files of the store.

    def read(self, relpath: str) -> bytes:
        return self.get(relpath)

    def write(self, relpath: str, data: bytes) -> str:
        """Put a whole file (a manifest, a page); return its URL."""
        self.put(relpath, data)
        return self.location(relpath)

    def has_snapshots(self) -> bool:
        return bool(self.snapshot_ids())

    def snapshot_ids(self) -> list[str]:
        return [
            parts[1]
            for info in self.listing(f"{layout.SNAPSHOTS}/")
            if len(parts := info.key.split("/")) == 3 and parts[2] == layout.MANIFEST_NAME
        ]

    def delete_snapshot(self, snapshot_id: str) -> None:
        self.delete([layout.manifest_relpath(snapshot_id)])  # the record first
        rest = [info.key for info in self.listing(f"{layout.snapshot_folder(snapshot_id)}/")]
        rest += [info.key for info in self.listing(f"{layout.quarantine_folder(snapshot_id)}/")]
        self.delete(rest)

    # Images.

    def put_image(
        self, download: Download, *, sha256: str, image_format: str, keep_source: bool = False
    ) -> Placed:
        """Store an image's validated content (of ``sha256``) under its content key, with the
        version of the object holding it. An image stored already is not put again: where the
        version tag is no content hash (``file://``, some S3-compatible services) that would
        change the version every other URL's index entry of it holds. Its bytes are hashed
        instead, and put back only when damaged."""
        content = download.read_bytes() if isinstance(download, Path) else download
        key = layout.stored_relpath(sha256, image_format)
        try:
            return Placed(key, self.put(key, content, create_only=True))
        except ObjectExists:
            pass
        try:
            stored, version = self.get_versioned(key)
            if hashlib.sha256(stored).hexdigest() == sha256:
                return Placed(key, version)
        except FileNotFoundError:  # pruned meanwhile
            pass
        return Placed(key, self.put(key, content))

    def check_stored(self, relpath: str, *, sha256: str, size: int | None = None) -> None:
        """Check that the stored object ``relpath`` holds content ``sha256`` (of ``size``
        bytes); StoredFileProblem if not."""
        if not layout.is_stored_relpath(relpath, sha256):
            raise StoredFileProblem(f"{relpath!r} is not the stored path of sha256 {sha256}")
        try:
            content = self.get(relpath)
        except FileNotFoundError:
            raise StoredFileProblem(f"{relpath} is missing") from None
        except StoreError as exc:
            raise StoredFileProblem(f"{relpath}: {exc}") from None
        if size is not None and len(content) != size:
            raise StoredFileProblem(f"{relpath} has {len(content)} bytes, not {size}")
        if (actual := hashlib.sha256(content).hexdigest()) != sha256:
            raise StoredFileProblem(f"{relpath} has sha256 {actual}, not {sha256}")

    def confirm_reuse(self, image: StoredImage) -> None:
        pass  # the index's lookup found it stored, of its size and version: no GET per image

    def quarantine(self, download: Download, snapshot_id: str, name: str) -> str:
        relpath = layout.quarantine_relpath(snapshot_id, name)
        self.put(relpath, download.read_bytes() if isinstance(download, Path) else download)
        return relpath

    def stored_files(self) -> Iterator[tuple[str, int]]:
        for key, info in stored_images(self).items():
            yield key, info.size

    def delete_images(self, relpaths: Iterable[str]) -> None:
        self.delete(relpaths)

    def sync(self) -> None:
        pass  # every PUT was durable when it returned

    # Staging: none kept between runs; a batch downloads into this worker's scratch folder.

    @contextlib.contextmanager
    def batch_staging(self, snapshot_id: str) -> Iterator[ScratchStaging]:
        with tempfile.TemporaryDirectory(prefix="gallery-snapshot-batch-") as scratch:
            yield ScratchStaging(Path(scratch))

    def staging_dir(self, snapshot_id: str) -> None:
        return None

    def sweep_stale_staging(self) -> list[str]:
        return []

    def kept_downloads(self, snapshot_id: str) -> int:
        return 0

    # Locks: a snapshot and a prune must not overlap (prune deletes what nothing references).

    @staticmethod
    def snapshot_lock_key(snapshot_id: str) -> str:
        return f"{LOCK_PREFIX}snapshot-{snapshot_id}"

    def _live_locks(self, *, reference: str | None = None) -> dict[str, datetime]:
        """Lock keys refreshed within ``STALE_LOCK``, with their last refresh. Ages are
        counted on the store's clock, from the lock ``reference`` just put, when given: a
        machine whose clock runs ahead must not take live locks for dead ones."""
        locks = {
            info.key: info.modified
            for info in self.listing(LOCK_PREFIX)
            if _LOCK_KEY.match(info.key)
        }
        now = locks.get(reference or "") or datetime.now(UTC)
        return {key: modified for key, modified in locks.items() if now - modified < STALE_LOCK}

    def running_snapshots(self, *, reference: str | None = None) -> list[str]:
        """Lock keys of snapshots in progress."""
        return sorted(key for key in self._live_locks(reference=reference) if key != PRUNE_LOCK)

    def prune_running(self, *, reference: str | None = None) -> bool:
        return PRUNE_LOCK in self._live_locks(reference=reference)

    def confirm_alone(self) -> None:
        """Before a prune deletes anything: its lock put again, and no snapshot running. A
        prune stalled past its lock's life (a paused VM, SIGSTOP) may find one that started
        meanwhile, seeing no live prune; then it deletes nothing."""
        self.put(PRUNE_LOCK, b"")
        if running := self.running_snapshots(reference=PRUNE_LOCK):
            names = ", ".join(key.removeprefix(f"{LOCK_PREFIX}snapshot-") for key in running)
            raise StoreError(
                f"snapshot(s) {names} started on {self.url} while this prune was stalled past "
                "its lock: nothing deleted; prune again when they have finished"
            )

    def settle(self, snapshot_id: str, records: list[ImageRecord]) -> list[ImageRecord]:
        """Before a snapshot writes its manifest: its lock put again (so no prune starts
        deleting now), any prune that began while it had lapsed waited out, then every image
        the snapshot names checked to be there (one LIST). One deleted meanwhile is recorded
        ``failed``: a manifest never names a missing image."""
        key = self.snapshot_lock_key(snapshot_id)
        self.put(key, b"")
        while self.prune_running(reference=key):
            time.sleep(PRUNE_POLL_SECONDS)
            self.put(key, b"")
        present = {key: info.size for key, info in stored_images(self).items()}
        return [
            record
            if record.path is None or present.get(record.path) == record.bytes
            else record.model_copy(
                update={
                    "status": "failed",
                    "path": None,
                    "error": "its stored copy was deleted by a prune while this snapshot "
                    "was stalled; the next snapshot fetches it again",
                }
            )
            for record in records
        ]

    @contextlib.contextmanager
    def _held(self, key: str) -> Iterator[None]:
        """Keep the lock object ``key`` fresh while the block runs; delete it after."""
        stop = threading.Event()

        def refresh() -> None:
            while not stop.wait(LOCK_REFRESH.total_seconds()):
                with contextlib.suppress(StoreError):  # the next refresh may get through
                    self.put(key, b"")

        keeper = threading.Thread(target=refresh, name=f"refresh {key}", daemon=True)
        keeper.start()
        try:
            yield
        except BaseException:
            stop.set()
            keeper.join()
            with contextlib.suppress(StoreError):  # the error that stopped the block says more
                self.delete([key])
            raise
        stop.set()
        keeper.join()
        self.delete([key])

    def read_lock(self) -> contextlib.AbstractContextManager[None]:
        """Readers announce nothing (verify may run with read-only credentials)."""
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def snapshot_lock(self, snapshot_id: str) -> Iterator[None]:
        """Announce a snapshot in progress; refuse while a prune runs."""
        key = self.snapshot_lock_key(snapshot_id)
        self.put(key, b"")
        with self._held(key):
            if self.prune_running(reference=key):
                raise StoreError(
                    f"a prune is running on {self.url} ({self.location(PRUNE_LOCK)}): "
                    "try again when it has finished"
                )
            yield

    @contextlib.contextmanager
    def prune_lock(self) -> Iterator[None]:
        """Hold the store alone: one prune at a time (a conditional PUT), and none while a
        snapshot runs (each side announces itself first, then checks for the other)."""
        if (
            PRUNE_LOCK
            in {info.key for info in self.listing(LOCK_PREFIX)} - self._live_locks().keys()
        ):
            self.delete([PRUNE_LOCK])  # a killed prune's
        try:
            self.put(PRUNE_LOCK, b"", create_only=True)
        except ObjectExists:
            raise StoreError(
                f"another prune is running on {self.url} (its lock "
                f"{self.location(PRUNE_LOCK)} is refreshed while it runs)"
            ) from None
        with self._held(PRUNE_LOCK):
            if running := self.running_snapshots(reference=PRUNE_LOCK):
                names = ", ".join(key.removeprefix(f"{LOCK_PREFIX}snapshot-") for key in running)
                raise StoreError(
                    f"snapshot(s) in progress on {self.url}: {names}; prune when they have "
                    f"finished (a lock not refreshed for {STALE_LOCK.seconds // 60} minutes is a "
                    "killed run's)"
                )
            yield
