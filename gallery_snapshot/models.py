"""Plain data passed between the stages. All of it pickles and hashes stably, so it can
cross process boundaries and serve as Prefect task inputs and cache keys."""

from __future__ import annotations

import builtins
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field

# "skipped" only travels from validation to the manifest, which lists such images as skipped:
# a stored image of a format this run does not want.
ImageStatus = Literal["downloaded", "reused", "invalid", "gone", "failed", "skipped"]
FetchStatus = Literal["fetched", "reused", "gone", "failed"]
# A manifest's images are downloaded, reused (both stored), invalid, gone or failed.
STATUSES = ("downloaded", "reused", "invalid", "gone", "failed")
STORED = ("downloaded", "reused")
# A snapshot id is also a folder's (and an object key's) name.
SNAPSHOT_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"

# One set of field names per distinct combination, shared by the models that were given it.
_FIELD_SETS: dict[frozenset[str], set[str]] = {}


def _share_fields_set(model: BaseModel) -> None:
    names = model.__pydantic_fields_set__
    shared = _FIELD_SETS.setdefault(frozenset(names), names)
    object.__setattr__(model, "__pydantic_fields_set__", shared)


class Frozen(BaseModel):
    """A frozen model whose instances share the set of names of their explicitly set fields.

    Pydantic keeps that set per instance, and it is most of a per-image model: 728 B of a
    Link's 1.3 KB, 1.2 KB of an ImageRecord's 2.2 KB after ``model_copy(update=...)`` (at
    100,000 images, ~200 MB of a snapshot's memory). Sharing is safe because the model is
    frozen: pydantic adds to the set only on assignment, which a frozen model refuses, and
    ``model_copy`` copies it before adding to it."""

    model_config = ConfigDict(frozen=True)

    def model_post_init(self, context: Any, /) -> None:
        _share_fields_set(self)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        copied = super().model_copy(update=update, deep=deep)
        _share_fields_set(copied)
        return copied

    def __setstate__(self, state: dict[Any, Any]) -> None:
        # Unpickled: results from process and Dask workers.
        super().__setstate__(state)
        _share_fields_set(self)


class Link(Frozen):
    """One image a source listed, in listing order (``rank`` starts at 1)."""

    url: str
    id: str
    rank: int
    type: str | None = None  # MIME type as the source reports it, e.g. "image/jpeg"
    animated: bool = False
    album: str | None = None  # id of the album the image was expanded from


class SkippedLink(Frozen):
    """A link (or a listing item) left out of the snapshot, and why."""

    url: str
    id: str | None = None
    reason: str


class Listing(BaseModel):
    """What a source found: the links in order, plus the items it could not use."""

    links: list[Link]
    skipped: list[SkippedLink] = []


class Selection(BaseModel):
    """The links to download, and every link the filter dropped with its reason."""

    selected: list[Link]
    skipped: list[SkippedLink]


class StoredImage(Frozen):
    """A validated image in the store, named by its content."""

    sha256: str
    format: str  # Pillow's name, e.g. "JPEG"
    bytes: int
    width: int
    height: int


class FetchResult(Frozen):
    """What the downloader did for one link. A ``fetched`` file waits in staging for
    validation; a ``reused`` one is already stored, as ``stored`` says."""

    link: Link
    status: FetchStatus
    path: str | None = None  # absolute path of the staged file (fetched)
    # The fetched bytes themselves, when the store is an object store: the next step may run
    # on another machine, and no task can read another one's disk.
    content: builtins.bytes | None = None  # (the field "bytes" shadows the builtin here)
    sha256: str | None = None
    bytes: int | None = None
    stored: StoredImage | None = None  # reused; or fetched again, its stored copy damaged
    error: str | None = None


class ImageRecord(Frozen):
    """One image's line in the manifest."""

    url: str
    id: str
    rank: int
    status: ImageStatus
    path: str | None = None  # relative to the output folder; set for downloaded and reused
    sha256: str | None = None
    bytes: int | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None
    error: str | None = None


class Counts(BaseModel):
    """A snapshot at a glance: links listed, selected, then the selected ones by status, and
    the links skipped."""

    model_config = ConfigDict(frozen=True)

    links: int
    selected: int
    downloaded: int
    reused: int
    invalid: int
    gone: int
    failed: int
    skipped: int


class ChangeCounts(BaseModel):
    """How many image URLs of each kind a ``Changes`` block holds (``unchanged`` only counted)."""

    model_config = ConfigDict(frozen=True)

    new: int = 0
    vanished: int = 0
    came_back: int = 0
    changed: int = 0
    unchanged: int = 0
    gone_http: int = 0
    gone_placeholder: int = 0
    gone_other: int = 0


class Changes(BaseModel):
    """A snapshot against the previous snapshot of the same source, by URL and content (see
    ``gallery_snapshot.changes``): URLs stored now and not listed then (new), stored then and
    not now (vanished, the gone ones among them split by cause), stored now and listed but not
    stored then (came back), stored both times with other bytes (changed)."""

    model_config = ConfigDict(frozen=True)

    previous: str  # the snapshot compared with
    counts: ChangeCounts
    new: list[str] = []
    vanished: list[str] = []
    came_back: list[str] = []
    changed: list[str] = []
    gone_http: list[str] = []  # HTTP 404 or 410
    gone_placeholder: list[str] = []  # redirected to the host's removed-image placeholder
    gone_other: list[str] = []


class ManifestHeader(BaseModel):
    """What a manifest says before its entries: the snapshot's id (its folder's name), when
    it ran, what it listed (the source's options), its counts and its changes since the
    previous snapshot of its source (None for a source's first snapshot, and in manifests
    written before changes were recorded)."""

    model_config = ConfigDict(frozen=True)

    snapshot_id: str = Field(pattern=SNAPSHOT_ID)
    started_at: str
    finished_at: str
    source: dict[str, Any]
    counts: Counts
    changes: Changes | None = None


class SnapshotSummary(BaseModel):
    """What the snapshot flow returns: the manifest's and the page's locations and the counts,
    not the manifest itself (tens of MB at 100,000 images)."""

    snapshot_id: str
    manifest: str
    page: str
    counts: Counts


# An entry as a model, or as JSON read from a manifest already checked (made a model when
# reached: 100,000 ImageRecords at once came to more than the parsed JSON itself).
ImageEntry = ImageRecord | dict[str, Any]
SkippedEntry = SkippedLink | dict[str, Any]


class Manifest:
    """A snapshot's manifest: its header, its images in rank order and its skipped links.
    The entries are streamed: each becomes a model only when an iteration reaches it. Built by
    ``manifest.build_manifest`` (holding the flow's own records) or read by
    ``manifest.parse_manifest`` (holding the parsed JSON, every entry checked). It pickles,
    but is never a cache key: tasks take it ``quote``d, with caching off."""

    __slots__ = ("_images", "_skipped", "header")

    def __init__(
        self,
        header: ManifestHeader,
        images: Sequence[ImageEntry],
        skipped: Sequence[SkippedEntry] = (),
    ) -> None:
        self.header = header
        self._images = images
        self._skipped = skipped

    @property
    def snapshot_id(self) -> str:
        return self.header.snapshot_id

    @property
    def source(self) -> dict[str, Any]:
        return self.header.source

    @property
    def counts(self) -> Counts:
        return self.header.counts

    @property
    def image_count(self) -> int:
        return len(self._images)

    @property
    def skipped_count(self) -> int:
        return len(self._skipped)

    def images(self) -> Iterator[ImageRecord]:
        """The images in rank order, one model at a time."""
        for entry in self._images:
            yield entry if isinstance(entry, ImageRecord) else ImageRecord.model_validate(entry)

    def stored(self) -> Iterator[ImageRecord]:
        """The images the store holds (downloaded or reused), in rank order."""
        return (image for image in self.images() if image.status in STORED)

    def skipped(self) -> Iterator[SkippedLink]:
        """The links left out, one model at a time."""
        for entry in self._skipped:
            yield entry if isinstance(entry, SkippedLink) else SkippedLink.model_validate(entry)

    def with_header(self, header: ManifestHeader) -> Manifest:
        """This manifest's entries under ``header``."""
        return Manifest(header, self._images, self._skipped)

    def with_images(self, images: Sequence[ImageRecord]) -> Manifest:
        """This manifest with ``images`` instead of its own, its counts of them anew."""
        by_status: Counter[str] = Counter(image.status for image in images)
        update = {status: by_status[status] for status in STATUSES}
        counts = self.counts.model_copy(update={"selected": len(images), **update})
        header = self.header.model_copy(update={"counts": counts})
        return Manifest(header, images, self._skipped)

    def as_document(self) -> dict[str, Any]:
        """The manifest as the JSON document it is written as, every entry at once (for a
        small manifest: at 100,000 images that is ~150 MB)."""
        return {
            **self.header.model_dump(),
            "images": [image.model_dump() for image in self.images()],
            "skipped": [item.model_dump() for item in self.skipped()],
        }

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Manifest) and self.as_document() == other.as_document()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Manifest({self.snapshot_id!r}, {len(self._images)} images)"
