"""The validation step: decode every downloaded file with Pillow, then store or quarantine it.

The format is sniffed from the bytes (Pillow is only allowed the wanted formats), never taken
from the extension or ``Content-Type``. The pixel count is checked from the header before any
decoding, so a decompression bomb is rejected without allocating it; so is the work of decoding
every frame of an animation (or every scan of a progressive JPEG), and decoding stops at the
deadline.
"""

from __future__ import annotations

import io
import struct
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from PIL import Image, UnidentifiedImageError
from PIL.JpegImagePlugin import JpegImageFile

from gallery_snapshot.config import DEFAULT_DEADLINE
from gallery_snapshot.downloader import staged_name
from gallery_snapshot.models import FetchResult, ImageRecord, StoredImage
from gallery_snapshot.store import SnapshotStore, store_named, stored_relpath
from gallery_snapshot.store.contract import Download, IndexEntry
from gallery_snapshot.store.files import storage_error

# Our own max_pixels check decides; Pillow's warning would only be noise.
warnings.simplefilter("ignore", Image.DecompressionBombWarning)

# All the frames of an image (or the scans of a progressive JPEG) may cost this many times
# max-pixels to decode, together (seconds of CPU at worst with the default max-pixels).
# Pillow composites every frame onto the whole canvas, and libjpeg goes through the whole
# image for every scan, so each frame or scan is counted at the image's full size.
DECODE_BUDGET = 10
# Each frame also costs a fixed time, however small: this many keep an image under a second.
MAX_FRAMES = 10_000


class InvalidImage(Exception):
    """The file is not a whole, decodable image of a wanted format."""


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    format: str


def inspect_image(
    path: Path | BinaryIO,
    *,
    formats: tuple[str, ...],
    max_pixels: int,
    decode: bool = True,
    deadline: float = DEFAULT_DEADLINE,
) -> ImageInfo:
    """Check that ``path`` is an image of one of ``formats`` (Pillow names, e.g. "JPEG").

    With ``decode`` the whole image is decoded, which catches truncation and corrupt scans,
    within ``DECODE_BUDGET`` x ``max_pixels`` pixels and ``deadline`` seconds; JPEGs are
    decoded at 1/8 scale (DCT scaling still reads every scan, at a fraction of the cost).
    Without it only the header is read, for files validated when they were stored.
    """
    try:
        with Image.open(path, formats=formats) as image:
            width, height = image.size
            _check_frame(width, height, max_pixels)
            if decode:
                _decode(image, max_pixels=max_pixels, deadline=deadline)
            # An MPO is a JPEG whose first picture is the photo and the others its previews,
            # other eye or gain map, after it: a JPEG to every viewer.
            image_format = "JPEG" if isinstance(image, JpegImageFile) else str(image.format)
            return ImageInfo(width=width, height=height, format=image_format)
    except UnidentifiedImageError:
        raise InvalidImage(f"not an image of a wanted format ({', '.join(formats)})") from None
    except Image.DecompressionBombError as exc:
        raise InvalidImage(f"decompression bomb: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidImage(f"cannot decode: {exc}") from None
    except (IndexError, KeyError, TypeError, struct.error) as exc:  # Pillow on malformed bytes
        raise InvalidImage(f"cannot decode: {type(exc).__name__}: {exc}") from None


def _check_frame(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise InvalidImage(
            f"{width}x{height} = {width * height} pixels exceed max-pixels ({max_pixels})"
        )


def _check_work(count: int, what: str, size: tuple[int, int], budget: int) -> None:
    """Refuse ``count`` frames (or scans) of ``size`` when decoding them exceeds ``budget``."""
    pixels = count * size[0] * size[1]
    if pixels > budget:
        raise InvalidImage(
            f"{count} {what} of {size[0]}x{size[1]} = {pixels} pixels to decode exceed "
            f"{budget} ({DECODE_BUDGET} x max-pixels)"
        )


def _decode(image: Image.Image, *, max_pixels: int, deadline: float) -> None:
    budget = DECODE_BUDGET * max_pixels
    width, height = image.size
    if isinstance(image, JpegImageFile):  # an MPO's too: its first picture only
        scans = _scans(image) if image.info.get("progressive") else 1
        _check_work(scans, "scans", image.size, budget)
        image.draft("RGB", (max(1, width // 8), max(1, height // 8)))
        image.load()
        return
    frames = getattr(image, "n_frames", 1)  # from the header; a GIF's by skipping its data
    if frames > MAX_FRAMES:
        raise InvalidImage(f"{frames} frames exceed the limit of {MAX_FRAMES}")
    _check_work(frames, "frames", image.size, budget)
    until = time.monotonic() + deadline
    spent = 0
    for frame in range(frames):
        if frame and time.monotonic() > until:
            raise InvalidImage(f"decoding took longer than {deadline:g} s (the deadline)")
        image.seek(frame)
        width, height = image.size  # a GIF's canvas grows to hold its frames
        _check_frame(width, height, max_pixels)
        spent += width * height
        if spent > budget:
            raise InvalidImage(
                f"its frames add up to more than {budget} pixels to decode "
                f"({DECODE_BUDGET} x max-pixels)"
            )
        image.load()


def _scans(image: JpegImageFile) -> int:
    """The scans of a progressive JPEG: its start-of-scan markers, which never occur inside
    scan data (what follows the image, an MPO's other pictures, counts too)."""
    assert image.fp is not None
    image.fp.seek(0)
    count, last = 0, b""
    while chunk := image.fp.read(1 << 20):
        count += (last + chunk).count(b"\xff\xda")
        last = chunk[-1:]
    return count


def _download(result: FetchResult) -> Download:
    """What the download step handed on: its staged file, or its bytes."""
    if result.content is not None:
        return result.content
    return Path(str(result.path))


@dataclass
class _Keeper:
    """Where judged downloads go, through the store's interface: kept images and their index
    entries, quarantined failures. Where the store's puts are not durable at once (a folder),
    the batch is synced once and only then indexed, and staged copies of indexed images stay
    until the index names them: a run killed before that leaves them (and their journal) for
    the next run to adopt, not to fetch again."""

    store: SnapshotStore
    entries: list[IndexEntry] = field(default_factory=list)
    staged: list[Path] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)  # URL -> version of what it put

    def source(self, result: FetchResult) -> Path | BinaryIO:
        download = _download(result)
        return io.BytesIO(download) if isinstance(download, bytes) else download

    def keep(self, result: FetchResult, image_format: str, *, indexed: bool) -> str:
        assert result.sha256 is not None
        placed = self.store.put_image(
            _download(result), sha256=result.sha256, image_format=image_format, keep_source=indexed
        )
        self.versions[result.link.url] = placed.version
        return placed.relpath

    def quarantine(self, result: FetchResult, snapshot_id: str) -> str:
        return self.store.quarantine(_download(result), snapshot_id, staged_name(result.link))

    def index(self, record: ImageRecord, result: FetchResult) -> None:
        entry = IndexEntry(record.url, _stored_image(record), self.versions.get(record.url, ""))
        if self.store.durable_puts:
            # Right after its image (never before: an entry never names a missing image), so
            # a run killed mid-batch loses no stored image to the next.
            self.store.index.remember([entry])
            return
        self.entries.append(entry)
        if result.path is not None:
            self.staged.append(Path(result.path))

    def finish(self) -> None:
        if self.entries:
            self.store.sync()  # the batch's files durable before the index names them
        self.store.index.remember(self.entries)
        for path in self.staged:
            path.unlink(missing_ok=True)


def validate_fetched(
    results: Iterable[FetchResult],
    *,
    out_dir: str,
    snapshot_id: str,
    formats: tuple[str, ...],
    max_pixels: int,
    deadline: float = DEFAULT_DEADLINE,
) -> list[ImageRecord]:
    """Turn fetch results into manifest records: validated downloads are stored under their
    content's name and remembered in the URL index, invalid ones go to quarantine (decoding
    one takes ``deadline`` seconds at most). A reused image is never judged again; one of a
    format this run does not want is ``skipped``."""
    store = store_named(out_dir)
    keeper = _Keeper(store)
    records: list[ImageRecord] = []
    try:
        for result in results:
            record = _validate_one(result, keeper, snapshot_id, formats, max_pixels, deadline)
            records.append(record)
            if record.status == "downloaded":
                keeper.index(record, result)
        keeper.finish()
    except OSError as exc:  # a local disk's: an object store's failures are StoreErrors
        raise storage_error(f"cannot store files in {store.name}", exc) from None
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
    deadline: float,
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
            keeper.source(result),
            formats=(*formats, *earlier),
            max_pixels=max_pixels,
            deadline=deadline,
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
