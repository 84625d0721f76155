"""The validation step: decode every downloaded file with Pillow, then store or quarantine it.

The format is sniffed from the bytes (Pillow is only allowed the wanted formats), never taken
from the extension or ``Content-Type``. The pixel count is checked from the header before any
decoding, so a decompression bomb is rejected without allocating it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from gallery_snapshot.errors import StoreError
from gallery_snapshot.models import FetchResult, ImageRecord
from gallery_snapshot.store import Store

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
    path: Path, *, formats: tuple[str, ...], max_pixels: int, decode: bool = True
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


def validate_fetched(
    results: Iterable[FetchResult],
    *,
    out_dir: str,
    snapshot_id: str,
    formats: tuple[str, ...],
    max_pixels: int,
) -> list[ImageRecord]:
    """Turn fetch results into manifest records: validated downloads move into the store,
    invalid ones into quarantine; reused files have their header read for the record."""
    store = Store(out_dir)
    try:
        return [
            _validate_one(result, store, snapshot_id, formats, max_pixels) for result in results
        ]
    except OSError as exc:
        raise StoreError(f"cannot move files within {store.root}: {exc.strerror}") from None


def _validate_one(
    result: FetchResult, store: Store, snapshot_id: str, formats: tuple[str, ...], max_pixels: int
) -> ImageRecord:
    link = result.link
    record = ImageRecord(
        url=link.url, id=link.id, rank=link.rank, status="failed", error=result.error
    )
    if result.status in ("gone", "failed"):
        return record.model_copy(update={"status": result.status})
    assert result.path is not None
    path = Path(result.path)
    known = {"sha256": result.sha256, "bytes": result.bytes}
    try:
        info = inspect_image(
            path, formats=formats, max_pixels=max_pixels, decode=result.status == "fetched"
        )
    except InvalidImage as exc:
        moved = store.relative(store.quarantine(path, snapshot_id))
        return record.model_copy(
            update={"status": "invalid", "error": f"{exc} (quarantined as {moved})", **known}
        )
    final = store.promote(path, link.url) if result.status == "fetched" else path
    return record.model_copy(
        update={
            "status": "downloaded" if result.status == "fetched" else "reused",
            "path": store.relative(final),
            "width": info.width,
            "height": info.height,
            "format": info.format,
            "error": None,
            **known,
        }
    )
