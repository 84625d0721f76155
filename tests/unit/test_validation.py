import hashlib
import io
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from gallery_snapshot.config import DEFAULT_MAX_PIXELS
from gallery_snapshot.models import FetchResult, Link
from gallery_snapshot.store import stored_relpath
from gallery_snapshot.store.local import LocalStore as Store
from gallery_snapshot.validation import InvalidImage, inspect_image, validate_fetched
from tests.support.bombs import (
    apng_bomb,
    gif_bomb,
    growing_gif,
    mpo,
    progressive_jpeg_bomb,
    webp_bomb,
)

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
    [remembered] = store.index.lookup(["https://i.imgur.com/good.jpg"]).values()
    assert (remembered.sha256, remembered.width, remembered.format) == (good_sha, 64, "JPEG")
    assert bad_record.status == "invalid" and bad_record.path is None
    assert "quarantined as quarantine/s/2-bad.jpg" in (bad_record.error or "")
    assert (tmp_path / "quarantine" / "s" / "2-bad.jpg").read_bytes() == b"<html>"
    assert len(list((tmp_path / "images").rglob("*.jpg"))) == 1
    assert (gone_record.status, gone_record.error) == ("gone", "HTTP 404")


# -- frame bombs, scan bombs and MPO (issue 17) -----------------------------------------------

ANIMATED = ("PNG", "GIF", "WEBP")


def animation(image_format: str, frames: int = 12, size: tuple[int, int] = (120, 90)) -> bytes:
    """An ordinary animation: a square moving across the picture."""
    pictures = []
    for frame in range(frames):
        picture = Image.new("RGB", size, (20, 20, 80))
        picture.paste((250, 200, 0), (frame * 8, 30, frame * 8 + 20, 50))
        pictures.append(picture)
    buffer = io.BytesIO()
    pictures[0].save(buffer, image_format, save_all=True, append_images=pictures[1:], duration=40)
    return buffer.getvalue()


@pytest.mark.parametrize("make", [apng_bomb, gif_bomb, webp_bomb], ids=["apng", "gif", "webp"])
def test_frame_bombs_are_refused_from_their_headers(
    tmp_path: Path, make: Callable[[int], bytes]
) -> None:
    # A few hundred KB that decode to 40 gigapixels: each 4000x4000 frame passes max-pixels.
    data = make(2500)
    assert len(data) < 300_000
    with pytest.raises(
        InvalidImage, match=r"^2500 frames of 4000x4000 = 40000000000 pixels to decode exceed "
    ):
        inspect_image(
            write(tmp_path, "bomb", data), formats=ANIMATED, max_pixels=DEFAULT_MAX_PIXELS
        )


def test_a_gif_whose_canvas_grows_after_its_header_is_stopped_at_the_budget(
    tmp_path: Path,
) -> None:
    # A 1x1 screen whose later frames sit at (999, 999): 200 frames of 1000x1000 to decode.
    path = write(tmp_path, "grows.gif", growing_gif(200, (1000, 1000)))
    with pytest.raises(InvalidImage, match=r"^its frames add up to more than 10000000 pixels"):
        inspect_image(path, formats=("GIF",), max_pixels=10**6)


def test_an_animation_of_too_many_frames_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "many.gif", gif_bomb(20_000, (2, 2)))
    with pytest.raises(InvalidImage, match=r"^20000 frames exceed the limit of 10000"):
        inspect_image(path, formats=("GIF",), max_pixels=DEFAULT_MAX_PIXELS)


def test_a_progressive_jpeg_of_a_thousand_scans_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "scans.jpg", progressive_jpeg_bomb(1000, (2000, 2000)))
    with pytest.raises(
        InvalidImage, match=r"^1000 scans of 2000x2000 = 4000000000 pixels to decode exceed "
    ):
        inspect_image(path, formats=JPEG_ONLY, max_pixels=DEFAULT_MAX_PIXELS)


@pytest.mark.parametrize(
    ("data", "image_format"),
    [
        (animation("GIF"), "GIF"),
        (animation("PNG"), "PNG"),
        (animation("WEBP"), "WEBP"),
        (progressive_jpeg_bomb(10, (640, 480)), "JPEG"),  # as many scans as a colour one has
    ],
)
def test_ordinary_animations_and_progressive_jpegs_pass(
    tmp_path: Path, data: bytes, image_format: str
) -> None:
    info = inspect_image(
        write(tmp_path, "fine", data), formats=(*ANIMATED, "JPEG"), max_pixels=DEFAULT_MAX_PIXELS
    )
    assert info.format == image_format


def test_decoding_stops_at_the_deadline(tmp_path: Path) -> None:
    path = write(tmp_path, "slow.gif", animation("GIF"))
    with pytest.raises(InvalidImage, match=r"^decoding took longer than 1e-09 s"):
        inspect_image(path, formats=("GIF",), max_pixels=10**6, deadline=1e-9)


@pytest.mark.parametrize("image_format", ["TIFF", "ICO"])
def test_other_formats_with_many_images_are_never_opened(tmp_path: Path, image_format: str) -> None:
    data = animation("TIFF") if image_format == "TIFF" else png_bytes()
    if image_format == "ICO":
        buffer = io.BytesIO()
        Image.new("RGB", (64, 64)).save(buffer, "ICO", sizes=[(16, 16), (32, 32), (64, 64)])
        data = buffer.getvalue()
    with pytest.raises(InvalidImage, match="not an image of a wanted format"):
        inspect_image(write(tmp_path, "x", data), formats=ANIMATED, max_pixels=10**6)


def camera_mpo() -> bytes:
    """A photo with a smaller second picture, as cameras write them (a JPEG with an MPF index)."""
    noise = Image.effect_noise((64, 48), 40).convert("RGB")
    return mpo(Image.new("RGB", (160, 120), (200, 30, 30)), noise)


def test_an_mpo_is_a_jpeg_stored_as_jpg_and_indexed(tmp_path: Path) -> None:
    data = camera_mpo()
    with Image.open(io.BytesIO(data)) as opened:
        assert opened.format == "MPO"  # what Pillow calls it
    store = Store(tmp_path)
    staging = store.staging_dir("s")
    staging.mkdir(parents=True)
    staged = write(staging, "1-camera.jpg", data)
    sha = hashlib.sha256(data).hexdigest()
    url = "https://i.imgur.com/camera.jpg"
    [record] = validate_fetched(
        [
            FetchResult(
                link=Link(url=url, id="camera", rank=1),
                status="fetched",
                path=str(staged),
                sha256=sha,
                bytes=len(data),
            )
        ],
        out_dir=str(tmp_path),
        snapshot_id="s",
        formats=JPEG_ONLY,
        max_pixels=10**6,
    )
    assert (record.status, record.format, record.error) == ("downloaded", "JPEG", None)
    assert record.path == stored_relpath(sha, "JPEG") and record.path.endswith(".jpg")
    assert (record.width, record.height) == (160, 120)
    assert (tmp_path / record.path).read_bytes() == data
    [remembered] = store.index.lookup([url]).values()
    assert remembered.format == "JPEG"


def test_only_the_primary_picture_of_an_mpo_is_decoded(tmp_path: Path) -> None:
    # The second picture is cut short: the photo itself is whole.
    path = write(tmp_path, "camera.jpg", camera_mpo()[:-200])
    info = inspect_image(path, formats=JPEG_ONLY, max_pixels=10**6)
    assert (info.format, info.width, info.height) == ("JPEG", 160, 120)
    truncated_primary = write(tmp_path, "cut.jpg", camera_mpo()[:400])
    with pytest.raises(InvalidImage, match="cannot decode"):
        inspect_image(truncated_primary, formats=JPEG_ONLY, max_pixels=10**6)


def test_a_file_pillow_chokes_on_is_invalid_not_a_crash(tmp_path: Path) -> None:
    # Cut right after the extension introducer of the second frame: Pillow's GIF reader
    # indexes the missing label (IndexError), which must not end the batch.
    data = animation("GIF")
    second = data.index(b"\x21\xf9\x04", data.index(b"\x21\xf9\x04") + 1)
    path = write(tmp_path, "cut.gif", data[: second + 1])
    with pytest.raises(InvalidImage, match=r"^cannot decode: IndexError"):
        inspect_image(path, formats=("GIF",), max_pixels=10**6)
