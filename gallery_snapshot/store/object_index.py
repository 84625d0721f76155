"""The URL index of an object store: no SQLite on an object store, so one zero-byte object per
URL under ``index/``, its key carrying what a reuse needs (``index/<url hash>/<sha256>.
<FORMAT>.<bytes>.<width>x<height>.<version>``). One LIST of ``index/`` and one of ``images/``
answer every reuse question of a run: O(listing pages), never a request per image."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import datetime

from gallery_snapshot.models import StoredImage
from gallery_snapshot.store import layout
from gallery_snapshot.store.contract import IndexEntry
from gallery_snapshot.store.object_client import ObjectClient, ObjectInfo
from gallery_snapshot.store.sqlite_index import url_key

_INDEX_ENTRY = re.compile(
    r"^index/([0-9a-f]{64})/([0-9a-f]{64})\.([A-Z0-9]{2,8})\.(\d+)\.(\d+)x(\d+)"
    r"(?:\.([A-Za-z0-9]{1,64}))?$"
)


def url_hash(url: str) -> str | None:
    """An image URL's name in the index: the sha256 of its normalized form (None for a URL
    that is never requested, see ``url_key``)."""
    key = url_key(url)
    return None if key is None else hashlib.sha256(key.encode("utf-8")).hexdigest()


def index_key(url: str, image: StoredImage, *, version: str = "") -> str | None:
    digest = url_hash(url)
    if digest is None:
        return None
    key = (
        f"{layout.INDEX_PREFIX}{digest}/{image.sha256}.{image.format}.{image.bytes}."
        f"{image.width}x{image.height}"
    )
    return f"{key}.{version}" if version else key


def parse_index_key(key: str) -> tuple[str, StoredImage, str] | None:
    """(url hash, image, version of its object) of an index key; None for a key of another
    shape."""
    match = _INDEX_ENTRY.match(key)
    if match is None:
        return None
    url_hash, sha256, image_format, size, width, height, version = match.groups()
    image = StoredImage(
        sha256=sha256, format=image_format, bytes=int(size), width=int(width), height=int(height)
    )
    return url_hash, image, version or ""


def stored_images(objects: ObjectClient) -> dict[str, ObjectInfo]:
    """Every stored image (``images/…``) by key: one LIST."""
    listing = objects.listing(f"{layout.IMAGES}/")
    return {info.key: info for info in listing if layout.STORED_PATH.match(info.key)}


class ObjectIndex:
    """The index objects of one store."""

    batch_lookups = False  # a lookup lists the whole index: once per run

    def __init__(self, objects: ObjectClient) -> None:
        self.objects = objects

    def lookup(self, urls: Iterable[str]) -> dict[str, StoredImage]:
        """The stored image each of ``urls`` gave before, when that image is still stored as
        it was put (its object there, of the recorded size and version): one LIST of the
        index and one of the images, whatever the number of URLs."""
        wanted = {digest: url for url in urls if (digest := url_hash(url)) is not None}
        newest: dict[str, tuple[datetime, StoredImage, str]] = {}
        for info in self.objects.listing(layout.INDEX_PREFIX):
            parsed = parse_index_key(info.key)
            if parsed is None or parsed[0] not in wanted:
                continue
            digest, image, version = parsed
            if digest not in newest or info.modified > newest[digest][0]:
                newest[digest] = (info.modified, image, version)
        if not newest:
            return {}
        stored = stored_images(self.objects)
        found: dict[str, StoredImage] = {}
        for digest, (_, image, version) in newest.items():
            current = stored.get(layout.stored_relpath(image.sha256, image.format))
            # Written again since (damaged in place, say): not reused, fetched and put back.
            rewritten = bool(version) and current is not None and version != current.version
            if current is not None and current.size == image.bytes and not rewritten:
                found[wanted[digest]] = image
        return found

    def remember(self, entries: Iterable[IndexEntry]) -> None:
        """Record which image each URL gave (its object of that version): a zero-byte object
        each, put after the image."""
        for entry in entries:
            if (key := index_key(entry.url, entry.image, version=entry.version)) is not None:
                self.objects.put(key, b"")

    def retain(self, sha256s: set[str]) -> int:
        """Delete the entries naming an image no longer kept, and those superseded by a newer
        entry of the same URL (lookup reads only the newest); return how many."""
        newest: dict[str, ObjectInfo] = {}
        forgotten: list[str] = []
        for info in self.objects.listing(layout.INDEX_PREFIX):
            if (entry := parse_index_key(info.key)) is None:
                continue  # not ours
            if entry[1].sha256 not in sha256s:
                forgotten.append(info.key)
                continue
            older = newest.setdefault(entry[0], info)
            if older is not info:
                superseded = min(older, info, key=lambda each: each.modified)
                newest[entry[0]] = info if superseded is older else older
                forgotten.append(superseded.key)
        self.objects.delete(forgotten)
        return len(forgotten)
