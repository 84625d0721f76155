"""The validation step: decode every downloaded file with Pillow, then store or quarantine it.

The format is sniffed from the bytes (Pillow is only allowed the wanted formats), never taken
from the extension or ``Content-Type``. The pixel count is checked from the header before any
decoding, so a decompression bomb is rejected without allocating it.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

from PIL import Image, UnidentifiedImageError

from gallery_snapshot.catalog import Catalog
from gallery_snapshot.downloader import staged_name
from gallery_snapshot.models import FetchResult, ImageRecord, StoredImage
from gallery_snapshot.object_store import ObjectStore
from gallery_snapshot.output import open_store
from gallery_snapshot.store import Store, storage_error, stored_relpath, sync_filesystem

# Our own max_pixels check decides; Pillow's warning would only be noise.
warnings.simplefilter("ignore", Image.DecompressionBombWarning)


class InvalidImage(Exception):
    """The file is not a whole, decodable image of a wanted format."""


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    format: str


def inspect_image(
    path: Path | BinaryIO, *, formats: tuple[str, ...], max_pixels: int, decode: bool = True
) -> ImageInfo:
    """Check that ``path`` is an image of one of ``formats`` (Pillow names, e.g. "JPEG").

    With ``decode`` the whole image is decoded, which catches truncation and corrupt scans;
    JPEGs are decoded at 1/8 scale (DCT scaling still reads every scan, at a fraction of the
    cost). Without it only the header is read, for files validated when they were stored.
    """
    try:
        with Image.open(path, formats=formats) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise InvalidImage(
                    f"{width}x{height} = {width * height} pixels exceed max-pixels ({max_pixels})"
                )
            if decode:
                frames = getattr(image, "n_frames", 1)
                for frame in range(frames):
                    image.seek(frame)
                    if image.format == "JPEG":
                        image.draft("RGB", (max(1, width // 8), max(1, height // 8)))
                    image.load()
            return ImageInfo(width=width, height=height, format=str(image.format))
    except UnidentifiedImageError:
        raise InvalidImage(f"not an image of a wanted format ({', '.join(formats)})") from None
    except Image.DecompressionBombError as exc:
        raise InvalidImage(f"decompression bomb: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidImage(f"cannot decode: {exc}") from None


class _Keeper(Protocol):
    """Where a judged download goes: the local store (its staged file) or an object store
    (its bytes)."""

    def source(self, result: FetchResult) -> Path | BinaryIO: ...

    def keep(self, result: FetchResult, image_format: str, *, indexed: bool) -> str: ...

    def quarantine(self, result: FetchResult, snapshot_id: str) -> str: ...

    def index(self, record: ImageRecord, result: FetchResult) -> None:
        """Have the URL index name a kept, wanted image (now, or at ``finish``)."""

    def finish(self) -> None:
        """Make what the batch kept durable and indexed."""


@dataclass(frozen=True)
class _LocalKeeper:
    store: Store
    entries: list[tuple[str, StoredImage]] = field(default_factory=list)  # for the index
    staged: list[Path] = field(default_factory=list)

    def source(self, result: FetchResult) -> Path:
        return Path(str(result.path))

    def keep(self, result: FetchResult, image_format: str, *, indexed: bool) -> str:
        # An indexed image's staged copy stays until the index names it (see finish).
        assert result.sha256 is not None
        return self.store.commit(
            self.source(result),
            sha256=result.sha256,
            image_format=image_format,
            keep_source=indexed,
        )

    def quarantine(self, result: FetchResult, snapshot_id: str) -> str:
        return self.store.relative(self.store.quarantine(self.source(result), snapshot_id))

    def index(self, record: ImageRecord, result: FetchResult) -> None:
        self.entries.append((record.url, _stored_image(record)))
        self.staged.append(self.source(result))

    def finish(self) -> None:
        if self.entries:
            sync_filesystem(self.store.root)  # the batch's files durable before the index
        Catalog(self.store.index_path).remember(self.entries)
        # Staged copies go only once the index knows their URLs: a run killed before that
        # leaves them (and their journal) for the next run to adopt, not to fetch again.
        for path in self.staged:
            path.unlink(missing_ok=True)


@dataclass(frozen=True)
class _ObjectKeeper:
    store: ObjectStore
    versions: dict[str, str] = field(default_factory=dict)  # URL -> version of what it put

    def source(self, result: FetchResult) -> BinaryIO:
        assert result.content is not None
        return io.BytesIO(result.content)

    def keep(self, result: FetchResult, image_format: str, *, indexed: bool) -> str:
        assert result.sha256 is not None and result.content is not None
        relpath = stored_relpath(result.sha256, image_format)
        # One PUT of the whole, validated content (none when it is stored already).
        self.versions[result.link.url] = self.store.put_image(
            relpath, result.content, sha256=result.sha256
        )
        return relpath

    def quarantine(self, result: FetchResult, snapshot_id: str) -> str:
        assert result.content is not None
        relpath = f"quarantine/{snapshot_id}/{staged_name(result.link)}"
        self.store.put(relpath, result.content)
        return relpath

    def index(self, record: ImageRecord, result: FetchResult) -> None:
        # Right after its image (never before: an entry never names a missing image), so a
        # run killed mid-batch loses no stored image to the next.
        version = self.versions.get(record.url, "")
        self.store.remember(record.url, _stored_image(record), version=version)

    def finish(self) -> None:
        pass  # every image went in whole, its index entry after it


def validate_fetched(
    results: Iterable[FetchResult],
    *,
    out_dir: str,
    snapshot_id: str,
    formats: tuple[str, ...],
    max_pixels: int,
) -> list[ImageRecord]:
    """Turn fetch results into manifest records: validated downloads are stored under their
    content's name and remembered in the URL index, invalid ones go to quarantine. A reused
    image is never judged again; one of a format this run does not want is ``skipped``."""
    store = open_store(out_dir)
    keeper: _Keeper = (
        _ObjectKeeper(store) if isinstance(store, ObjectStore) else _LocalKeeper(store)
    )
    records: list[ImageRecord] = []
    try:
        for result in results:
            record = _validate_one(result, keeper, snapshot_id, formats, max_pixels)
            records.append(record)
            if record.status == "downloaded":
                keeper.index(record, result)
        keeper.finish()
    except OSError as exc:  # a local disk's: an object store's failures are StoreErrors
        where = store.root if isinstance(store, Store) else store.url
        raise storage_error(f"cannot store files in {where}", exc) from None
    return records


def _stored_image(record: ImageRecord) -> StoredImage:
    assert record.sha256 and record.format and record.bytes is not None
    assert record.width is not None and record.height is not None
    return StoredImage(
        sha256=record.sha256,
        format=record.format,
        bytes=record.bytes,
        width=record.width,
        height=record.height,
    )


def _validate_one(
    result: FetchResult,
    keeper: _Keeper,
    snapshot_id: str,
    formats: tuple[str, ...],
    max_pixels: int,
) -> ImageRecord:
    link = result.link
    record = ImageRecord(
        url=link.url, id=link.id, rank=link.rank, status="failed", error=result.error
    )
    if result.status in ("gone", "failed"):
        return record.model_copy(update={"status": result.status})
    if result.status == "reused":
        assert result.stored is not None
        image = result.stored
        if image.format not in formats:
            reason = f"stored as {image.format}, not a wanted format ({', '.join(formats)})"
            return record.model_copy(update={"status": "skipped", "error": reason})
        return record.model_copy(
            update={
                "status": "reused",
                "path": stored_relpath(image.sha256, image.format),
                "error": None,
                **image.model_dump(),
            }
        )
    assert result.sha256 is not None
    known = {"sha256": result.sha256, "bytes": result.bytes}
    # Fetched again because its stored copy proved damaged: judged as when it was stored, so
    # the store is repaired even when this run does not want that format.
    earlier = () if result.stored is None else (result.stored.format,)
    try:
        info = inspect_image(
            keeper.source(result), formats=(*formats, *earlier), max_pixels=max_pixels
        )
    except InvalidImage as exc:
        moved = keeper.quarantine(result, snapshot_id)
        return record.model_copy(
            update={"status": "invalid", "error": f"{exc} (quarantined as {moved})", **known}
        )
    if info.format not in formats:
        keeper.keep(result, info.format, indexed=False)
        reason = f"stored as {info.format}, not a wanted format ({', '.join(formats)})"
        return record.model_copy(update={"status": "skipped", "error": reason})
    return record.model_copy(
        update={
            "status": "downloaded",
            "path": keeper.keep(result, info.format, indexed=True),
            "width": info.width,
            "height": info.height,
            "format": info.format,
            "error": None,
            **known,
        }
    )
