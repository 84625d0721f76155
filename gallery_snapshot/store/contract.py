"""What every store backend offers: the one interface the pipeline, the flow, verify, prune and
the reports use, whatever holds the snapshots (restic's backend interface, under which index,
check, prune and locks are written once). Backends differ in how they keep a promise, never in
which promises they keep: a folder locks with ``flock`` and syncs the filesystem once a batch;
an object store locks with refreshed lock objects and puts each image whole."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from gallery_snapshot.models import FetchResult, ImageRecord, StoredImage

# A download as the store takes it: a staged file, or its bytes (which travelled in a task's
# result from a worker whose disk the validation step cannot read).
Download = Path | bytes


class StoredFileProblem(Exception):
    """A stored file is missing, a symbolic link, unreadable, or not what it should be."""


@dataclass(frozen=True)
class Placed:
    """Where ``put_image`` stored an image, and the version of what holds it ("" where the
    backend has none): an index entry names the version it saw, so an image rewritten in place
    is not reused."""

    relpath: str
    version: str = ""


@dataclass(frozen=True)
class IndexEntry:
    url: str
    image: StoredImage
    version: str = ""


@dataclass(frozen=True)
class Received:
    """A whole download waiting in staging."""

    path: Path
    sha256: str
    bytes: int


class UrlIndex(Protocol):
    """Which stored image each image URL gave, so a stored image is reused without a request.
    It holds no truth of its own: every entry comes from a validated image, and the manifests
    record the same facts."""

    # Whether each batch asks the index for its own URLs (a keyed lookup, cheap, and a retried
    # batch sees what its first attempt stored), or the run asks once for all its URLs (when a
    # lookup lists the whole index).
    batch_lookups: bool

    def lookup(self, urls: Iterable[str]) -> dict[str, StoredImage]:
        """The stored images of those of ``urls`` the index knows, by URL as given."""
        ...

    def remember(self, entries: Iterable[IndexEntry]) -> None:
        """Record where each URL's image is stored (after the image itself)."""
        ...

    def retain(self, sha256s: set[str]) -> int:
        """Forget every URL whose content is not in ``sha256s``; return how many."""
        ...


class BatchStaging(Protocol):
    """Where one batch's downloads wait for validation, and what dead runs left behind."""

    folder: Path

    def adoptable(self) -> dict[str, Received]:
        """Whole downloads of runs that died or ended early, by URL (none where the backend
        keeps no staging between runs)."""
        ...

    def adopt(self, received: Received, target: Path) -> bool:
        """Move a dead run's download to ``target`` once it proves whole."""
        ...

    def record(self, url: str, received: Received) -> None:
        """Journal a whole download, for the next run should this one die."""
        ...

    def handed_on(self, result: FetchResult) -> FetchResult:
        """``result`` as the validation step will find it (wherever that runs)."""
        ...


class SnapshotStore(Protocol):
    """One store, opened once from the output's name (``open_store``)."""

    name: str  # the canonical name: an absolute folder, or the store's URL

    @property
    def index(self) -> UrlIndex: ...

    # Whether an image put is durable at once (else ``sync`` makes a batch's puts durable,
    # and the index may name them only after it).
    durable_puts: bool
    verify_threads: int
    browsable: bool  # whether a location opens in a browser as it is (a file's path)

    # Opening.
    def check_access(self) -> None:
        """StoreError (one line) when a snapshot cannot be written here; nothing written."""
        ...

    def ready_for_snapshot(self) -> None:
        """Bring the store up to date (layout, index) and check it can be written."""
        ...

    def open_existing(self, *, upgrade: bool) -> None:
        """StoreError unless the store holds snapshots (of the current layout, brought to it
        with ``upgrade``)."""
        ...

    # Files of the store.
    def location(self, relpath: str) -> str: ...

    def read(self, relpath: str) -> bytes: ...

    def write(self, relpath: str, data: bytes) -> str:
        """Write a whole file (a manifest, a page), atomically; return its location."""
        ...

    def has_snapshots(self) -> bool:
        """Whether a snapshot's manifest (or what takes its place) is here."""
        ...

    def snapshot_ids(self) -> list[str]:
        """The ids of the snapshot folders holding a manifest (or what takes its place)."""
        ...

    def delete_snapshot(self, snapshot_id: str) -> None:
        """Its manifest first, then the rest of its folder and its quarantine."""
        ...

    # Images.
    def put_image(
        self, download: Download, *, sha256: str, image_format: str, keep_source: bool = False
    ) -> Placed: ...

    def check_stored(self, relpath: str, *, sha256: str, size: int | None = None) -> None:
        """StoredFileProblem unless ``relpath`` holds content ``sha256`` (of ``size``)."""
        ...

    def confirm_reuse(self, image: StoredImage) -> None:
        """StoredFileProblem when the index's ``image`` may not be reused without a request."""
        ...

    def quarantine(self, download: Download, snapshot_id: str, name: str) -> str: ...

    def stored_files(self) -> Iterator[tuple[str, int]]:
        """(relpath, size) of every file of the stored shape under ``images/``."""
        ...

    def delete_images(self, relpaths: Iterable[str]) -> None: ...

    def sync(self) -> None:
        """Make the images put so far durable."""
        ...

    # Locks and staging.
    def snapshot_lock(self, snapshot_id: str) -> AbstractContextManager[object]: ...

    def read_lock(self) -> AbstractContextManager[object]: ...

    def prune_lock(self) -> AbstractContextManager[object]: ...

    def confirm_alone(self) -> None:
        """Before a prune deletes: StoreError when a snapshot started meanwhile."""
        ...

    def settle(self, snapshot_id: str, records: list[ImageRecord]) -> list[ImageRecord]:
        """Before a snapshot's manifest is written: its records, any image deleted meanwhile
        recorded ``failed``."""
        ...

    def batch_staging(self, snapshot_id: str) -> AbstractContextManager[BatchStaging]: ...

    def staging_dir(self, snapshot_id: str) -> Path | None:
        """Where this process can count a snapshot's staged downloads (None: they travel in
        task results)."""
        ...

    def sweep_stale_staging(self) -> list[str]: ...

    def kept_downloads(self, snapshot_id: str) -> int: ...


def nested_store(place: str, outer: str) -> str:
    """Why ``place``, inside the store ``outer``, is refused: one line."""
    return (
        f"{place} is inside the store {outer}, whose next snapshot or prune may delete it: "
        "choose a place outside it"
    )
