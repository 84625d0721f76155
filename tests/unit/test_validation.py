import hashlib
import io
import struct
from pathlib import Path

import pytest
from PIL import Image

from gallery_snapshot.catalog import Catalog
from gallery_snapshot.models import FetchResult, Link
from gallery_snapshot.store import Store, stored_relpath
from gallery_snapshot.validation import InvalidImage, inspect_image, validate_fetched

JPEG_ONLY = ("JPEG",)


def jpeg_bytes(size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, "JPEG")
    return buffer.getvalue()


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG")
    return buffer.getvalue()


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_a_good_jpeg_is_described(tmp_path: Path) -> None:
    info = inspect_image(
        write(tmp_path, "a.jpg", jpeg_bytes()), formats=JPEG_ONLY, max_pixels=10**6
    )
    assert (info.width, info.height, info.format) == (64, 48, "JPEG")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (jpeg_bytes()[:-200], "cannot decode"),
        (jpeg_bytes()[:-2], "cannot decode"),
        (b"<html>an error page</html>", "not an image of a wanted format"),
        (png_bytes(), "not an image of a wanted format"),  # named .jpg, sniffed as PNG
        (b"", "not an image of a wanted format"),
    ],
)
def test_broken_or_unwanted_files_are_invalid(tmp_path: Path, data: bytes, reason: str) -> None:
    with pytest.raises(InvalidImage, match=reason):
        inspect_image(write(tmp_path, "x.jpg", data), formats=JPEG_ONLY, max_pixels=10**6)


def test_corrupt_huffman_tables_and_scan_headers_are_invalid(tmp_path: Path) -> None:
    data = jpeg_bytes((320, 240))
    dht, sos = data.index(b"\xff\xc4"), data.index(b"\xff\xda")
    for corrupt in (
        data[: dht + 4] + bytes(40) + data[dht + 44 :],
        data[: sos + 2] + b"\x00\x02" + data[sos + 4 :],
    ):
        with pytest.raises(InvalidImage, match="cannot decode"):
            inspect_image(write(tmp_path, "c.jpg", corrupt), formats=JPEG_ONLY, max_pixels=10**6)


@pytest.mark.parametrize(
    ("side", "reason"),
    [(12_000, "144000000 pixels exceed max-pixels"), (60_000, "decompression bomb")],
)
def test_a_header_claiming_gigapixels_is_rejected_before_decoding(
    tmp_path: Path, side: int, reason: str
) -> None:
    data = bytearray(jpeg_bytes())
    sof = data.index(b"\xff\xc0")  # baseline frame header: height and width follow the precision
    data[sof + 5 : sof + 9] = struct.pack(">HH", side, side)
    path = write(tmp_path, "bomb.jpg", bytes(data))
    with pytest.raises(InvalidImage, match=reason):
        inspect_image(path, formats=JPEG_ONLY, max_pixels=10**8)


def test_validated_files_move_into_the_store_and_bad_ones_into_quarantine(tmp_path: Path) -> None:
    store = Store(tmp_path)
    staging = store.staging_dir("s")
    staging.mkdir(parents=True)
    good = write(staging, "1-good.jpg", jpeg_bytes())
    good_sha = hashlib.sha256(good.read_bytes()).hexdigest()
    bad = write(staging, "2-bad.jpg", b"<html>")
    results = [
        FetchResult(
            link=Link(url="https://i.imgur.com/good.jpg", id="good", rank=1),
            status="fetched",
            path=str(good),
            sha256=good_sha,
            bytes=good.stat().st_size,
        ),
        FetchResult(
            link=Link(url="https://i.imgur.com/bad.jpg", id="bad", rank=2),
            status="fetched",
            path=str(bad),
            sha256="def",
            bytes=6,
        ),
        FetchResult(
            link=Link(url="https://i.imgur.com/gone.jpg", id="gone", rank=3),
            status="gone",
            error="HTTP 404",
        ),
    ]
    good_record, bad_record, gone_record = validate_fetched(
        results, out_dir=str(tmp_path), snapshot_id="s", formats=JPEG_ONLY, max_pixels=10**6
    )
    assert good_record.status == "downloaded"
    assert good_record.path == stored_relpath(good_sha, "JPEG")
    assert (tmp_path / good_record.path).is_file() and not good.exists()
    [remembered] = Catalog(store.index_path).lookup(["https://i.imgur.com/good.jpg"]).values()
    assert (remembered.sha256, remembered.width, remembered.format) == (good_sha, 64, "JPEG")
    assert bad_record.status == "invalid" and bad_record.path is None
    assert "quarantined as quarantine/s/2-bad.jpg" in (bad_record.error or "")
    assert (tmp_path / "quarantine" / "s" / "2-bad.jpg").read_bytes() == b"<html>"
    assert len(list((tmp_path / "images").rglob("*.jpg"))) == 1
    assert (gone_record.status, gone_record.error) == ("gone", "HTTP 404")
