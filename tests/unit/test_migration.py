"""An output folder written by the old layout keeps working: migrated on first use."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import sqlite3
from pathlib import Path

import pytest

from gallery_snapshot.manifest import iter_manifests
from gallery_snapshot.store import is_stored_relpath
from gallery_snapshot.store.local import LocalStore as Store
from gallery_snapshot.store.migration import upgrade_store
from gallery_snapshot.store.sqlite_index import SqliteIndex as Catalog

LEGACY = Path(__file__).parent.parent / "data" / "legacy-store"


def test_an_old_layout_folder_is_migrated_losing_nothing_it_still_had(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "out"
    shutil.copytree(LEGACY, out)
    contents_before = {
        hashlib.sha256(path.read_bytes()).hexdigest()
        for path in (out / "images").rglob("*")
        if path.is_file() and path.name != "orphan.jpg"
    }
    with caplog.at_level(logging.INFO):
        upgrade_store(Store(out))
    assert "migrated" in caplog.text and "4 files, 2 manifests rewritten" in caplog.text
    assert "left 1 files no manifest names where they were" in caplog.text
    # A file no manifest names is not ours to move: it stays, untouched.
    assert [p.name for p in (out / "images" / "127.0.0.1").iterdir()] == ["orphan.jpg"]
    stored = {path for path in (out / "images").rglob("*") if path.is_file()}
    assert {path.name.split(".")[0] for path in stored} == contents_before | {"orphan"}

    statuses = {}
    for _, manifest in iter_manifests(out):
        for image in manifest.images():
            statuses[(manifest.snapshot_id[-6:], image.url.rsplit("/", 2)[-2:][-1])] = image
            if image.status in ("downloaded", "reused"):
                assert image.path and is_stored_relpath(image.path, image.sha256)
                data = (out / image.path).read_bytes()
                assert hashlib.sha256(data).hexdigest() == image.sha256
    # The image the old layout overwrote is recorded as lost, not as somebody else's bytes.
    lost = [image for image in statuses.values() if image.status == "failed"]
    assert [image.url.split("/", 3)[-1] for image in lost] == ["red/x.jpg"]
    assert "overwritten" in str(lost[0].error)
    assert Catalog(out / "index.sqlite").count() == 4  # a, b, c.png, blue/x.jpg

    upgrade_store(Store(out))  # a second use changes nothing
    assert {path for path in (out / "images").rglob("*") if path.is_file()} == stored


def test_a_new_folder_gets_its_url_index_before_any_task(tmp_path: Path) -> None:
    """Made once, in WAL mode, by the flow's process: two Dask workers creating it at once
    failed with "database is locked" (a new database's switch to WAL does not wait)."""
    store = Store(tmp_path / "out")
    upgrade_store(store)
    with sqlite3.connect(store.index_path) as index:
        assert index.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert Catalog(store.index_path).count() == 0


def test_a_migrated_manifest_counts_the_image_the_old_layout_lost(tmp_path: Path) -> None:
    """The report, page and summary read a manifest's counts: migration rewrote an image the
    old layout had overwritten as failed, and left the counts saying it was downloaded."""
    out = tmp_path / "out"
    shutil.copytree(LEGACY, out)
    upgrade_store(Store(out))
    path = out / "snapshots" / "20261120T100000Z-aaaaaa" / "manifest.json"
    document = json.loads(path.read_text())
    statuses = [image["status"] for image in document["images"]]
    assert statuses.count("failed") == 1
    assert document["counts"]["failed"] == 1
    assert document["counts"]["downloaded"] == statuses.count("downloaded") == 3
