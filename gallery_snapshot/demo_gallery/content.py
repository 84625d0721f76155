"""What the demo gallery serves: a catalogue of gallery items and the bytes of each image.

The default catalogue shows every path of the pipeline: JPEGs, PNGs, an animated GIF, a
video, albums with and without embedded images, a duplicate, broken and deleted images, a
link to a foreign host and an image whose server keeps failing. ``bulk_catalogue`` makes N
plain JPEGs for benchmarks. Images are generated, deterministic, and unique per id.
"""

from __future__ import annotations

import functools
import hashlib
import io
import random
import struct
from dataclasses import dataclass, field
from typing import Any, Literal

from PIL import Image

Body = Literal["image", "html", "truncated", "deleted", "missing", "failing"]
MIME = {"jpg": "image/jpeg", "png": "image/png", "gif": "image/gif", "mp4": "video/mp4"}
FOREIGN_HOST = "https://evil.example.com"


@dataclass(frozen=True)
class DemoImage:
    id: str
    ext: str = "jpg"
    body: Body = "image"
    size: tuple[int, int] = (320, 240)
    animated: bool = False
    host: str | None = None  # None: the demo gallery's own image host
    color_seed: str | None = None  # images sharing a seed share a base picture (cheap to serve)

    @property
    def path(self) -> str:
        return f"/{self.id}.{self.ext}"

    def item(self, image_base: str) -> dict[str, Any]:
        """The image as the Imgur API describes it."""
        width, height = self.size
        return {
            "id": self.id,
            "title": f"Demo image {self.id}",
            "datetime": 1478787875,
            "type": MIME[self.ext],
            "animated": self.animated,
            "width": width,
            "height": height,
            "size": 0,
            "nsfw": False,
            "is_album": False,
            "link": f"{self.host or image_base}{self.path}",
        }


@dataclass(frozen=True)
class DemoAlbum:
    id: str
    images: tuple[DemoImage, ...]
    embed_images: bool = True

    def item(self, image_base: str, *, with_images: bool | None = None) -> dict[str, Any]:
        embed = self.embed_images if with_images is None else with_images
        data: dict[str, Any] = {
            "id": self.id,
            "title": f"Demo album {self.id}",
            "cover": self.images[0].id,
            "link": f"{image_base}/a/{self.id}",
            "is_album": True,
            "images_count": len(self.images),
        }
        if embed:
            data["images"] = [image.item(image_base) for image in self.images]
        return data


Item = DemoImage | DemoAlbum


@dataclass
class Catalogue:
    pages: list[list[Item]]
    images: dict[str, DemoImage] = field(init=False)
    albums: dict[str, DemoAlbum] = field(init=False)

    def __post_init__(self) -> None:
        self.images, self.albums = {}, {}
        for page in self.pages:
            for item in page:
                if isinstance(item, DemoAlbum):
                    self.albums[item.id] = item
                    self.images.update((image.id, image) for image in item.images)
                else:
                    self.images[item.id] = item

    def image_for_path(self, path: str) -> DemoImage | None:
        stem, _, ext = path.lstrip("/").partition(".")
        image = self.images.get(stem)
        return image if image is not None and image.ext == ext and image.host is None else None


def demo_catalogue() -> Catalogue:
    """The gallery the demo and the tests snapshot: two pages, then an empty one."""
    jpeg = [DemoImage(f"Jpg{n:03d}") for n in range(1, 15)]
    page0: list[Item] = [
        jpeg[0],
        jpeg[1],
        DemoImage("Png001", ext="png"),
        DemoAlbum("AlbEmbd", (jpeg[2], jpeg[3], DemoImage("Png002", ext="png"), jpeg[4])),
        jpeg[5],
        DemoImage("Gif001", ext="gif", animated=True, size=(64, 64)),
        DemoImage("Vid001", ext="mp4", animated=True),
        DemoImage("BadHtml", body="html"),
        DemoImage("BadTrnc", body="truncated"),
        DemoImage("Deleted", body="deleted"),
        DemoImage("Missing", body="missing"),
        DemoImage("Foreign", host=FOREIGN_HOST),
        jpeg[6],
    ]
    page1: list[Item] = [
        DemoAlbum("AlbLazy", (jpeg[7], jpeg[8], jpeg[9]), embed_images=False),
        jpeg[0],  # the same image again: deduplicated
        jpeg[10],
        DemoImage("Failing", body="failing"),
        jpeg[11],
        jpeg[12],
        jpeg[13],
    ]
    return Catalogue([page0, page1])


def bulk_catalogue(count: int, *, per_page: int = 100, kilobytes: int = 40) -> Catalogue:
    """``count`` plain JPEGs of about ``kilobytes`` KB each, ``per_page`` to a page."""
    side = {10: (160, 120), 40: (320, 240), 100: (512, 384)}.get(kilobytes, (320, 240))
    images: list[Item] = [
        DemoImage(f"B{n:07d}", size=side, color_seed="bulk") for n in range(count)
    ]
    return Catalogue([images[start : start + per_page] for start in range(0, count, per_page)])


def _hue(seed: str) -> tuple[int, int, int]:
    digest = hashlib.sha256(seed.encode()).digest()
    return digest[0], digest[1], digest[2]


@functools.lru_cache(maxsize=256)
def _base_image(ext: str, size: tuple[int, int], color: tuple[int, int, int], frames: int) -> bytes:
    # Seeded noise: the same image bytes in every process, run after run.
    grain = random.Random(f"{size}{color}").randbytes(size[0] * size[1])
    noise = Image.frombytes("L", size, grain).point(lambda v: 96 + v // 3)
    gradient = Image.linear_gradient("L").resize(size)
    red, green, blue = (
        Image.blend(noise, gradient, 0.5).point(lambda v, c=c: (v + c) % 256) for c in color
    )
    picture = Image.merge("RGB", (red, green, blue))
    buffer = io.BytesIO()
    if ext == "jpg":
        picture.save(buffer, "JPEG", quality=85)
    elif ext == "gif":
        shots = [picture.rotate(90 * n) for n in range(frames)]
        shots[0].save(buffer, "GIF", save_all=True, append_images=shots[1:], duration=200, loop=0)
    else:
        picture.save(buffer, "PNG")
    return buffer.getvalue()


def image_bytes(image: DemoImage) -> bytes:
    """The file the image host serves for ``image`` (before any injected fault)."""
    if image.body == "html":
        return b"<!doctype html><html><body>Sorry, this image is not here.</body></html>"
    if image.ext == "mp4":
        return b"\x00\x00\x00\x18ftypmp42" + bytes(64)
    # A few base pictures, made unique per id: a JPEG comment carries the id.
    color = _hue(image.color_seed or image.id) if image.body == "image" else (128, 128, 128)
    data = _base_image(image.ext, image.size, color, 4 if image.animated else 1)
    if image.ext == "jpg":
        comment = f"gallery-snapshot demo {image.id}".encode()
        data = data[:2] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + data[2:]
    if image.body == "truncated":
        data = data[: len(data) * 2 // 3]
    return data


@functools.lru_cache(maxsize=1)
def removed_placeholder() -> bytes:
    """Imgur's small 'removed' PNG, as served after the redirect for a deleted image."""
    buffer = io.BytesIO()
    Image.new("RGB", (161, 81), (40, 40, 40)).save(buffer, "PNG")
    return buffer.getvalue()
