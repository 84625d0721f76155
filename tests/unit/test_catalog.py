"""The URL index: identity by whole normalized URL, batch lookups, forgetting, damage."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gallery_snapshot.errors import StoreError
from gallery_snapshot.models import StoredImage
from gallery_snapshot.store.contract import IndexEntry
from gallery_snapshot.store.sqlite_index import SqliteIndex as Catalog


def image(n: int) -> StoredImage:
    return StoredImage(sha256=f"{n:064x}", format="JPEG", bytes=n, width=1, height=1)


def test_urls_are_one_image_only_when_they_normalize_alike(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "index.sqlite")
    catalog.remember(
        [IndexEntry("http://h/x.jpg", image(1)), IndexEntry("http://h:8080/x.jpg", image(2))]
    )
    found = catalog.lookup(
        ["HTTP://H:80/x.jpg", "http://h:8080/x.jpg", "http://h/x.jpg?v=1", "http://h/y.jpg"]
    )
    assert found == {"HTTP://H:80/x.jpg": image(1), "http://h:8080/x.jpg": image(2)}


def test_lookups_of_many_urls_and_retain(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "index.sqlite")
    catalog.remember(IndexEntry(f"http://h/{n}.jpg", image(n % 7)) for n in range(2000))
    assert len(catalog.lookup(f"http://h/{n}.jpg" for n in range(2500))) == 2000
    forgotten = catalog.retain({image(0).sha256, image(1).sha256})
    assert forgotten == 2000 - len([n for n in range(2000) if n % 7 in (0, 1)])
    assert catalog.count() == 2000 - forgotten


def test_a_damaged_index_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    path.write_bytes(b"not a database" * 100)
    with pytest.raises(StoreError, match=r"unusable .*remove it, and the next run rebuilds it"):
        Catalog(path).lookup(["http://h/x.jpg"])


def test_threads_opening_a_new_index_at_once_all_get_it(tmp_path: Path) -> None:
    # Switching a new database to WAL does not wait on SQLite's busy handler: batches that
    # open a fresh index at the same moment must all get it, not "stayed locked for 60 s".
    for attempt in range(200):
        catalog = Catalog(tmp_path / f"index-{attempt}.sqlite")
        start = threading.Barrier(2)

        def first_lookup(catalog: Catalog = catalog, start: threading.Barrier = start) -> int:
            start.wait()
            return len(catalog.lookup(["http://example.com/a.jpg"]))

        with ThreadPoolExecutor(2) as pool:
            jobs = [pool.submit(first_lookup) for _ in range(2)]
            assert [job.result() for job in jobs] == [0, 0]
