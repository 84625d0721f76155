"""The store's interface kept alike by both backends: a folder, and an object store through
obstore's local backend (``file://``; the store machine runs the bucket of a real S3 server)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from gallery_snapshot.manifest import iter_manifests
from gallery_snapshot.models import StoredImage
from gallery_snapshot.store import SnapshotStore, StoredFileProblem, open_store, stored_relpath
from gallery_snapshot.store.contract import IndexEntry
from tests.support.images import image_bytes
from tests.support.stores import record_snapshot


@pytest.fixture(params=["folder", "objects"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> SnapshotStore:
    name = str(tmp_path / "out") if request.param == "folder" else f"file://{tmp_path}/bucket"
    opened = open_store(name)
    opened.ready_for_snapshot()
    return opened


def image_of(data: bytes) -> StoredImage:
    sha256 = hashlib.sha256(data).hexdigest()
    return StoredImage(sha256=sha256, format="JPEG", bytes=len(data), width=1, height=1)


@pytest.mark.parametrize("as_file", [True, False])
def test_an_image_is_put_checked_listed_and_deleted_alike(
    store: SnapshotStore, tmp_path: Path, as_file: bool
) -> None:
    data = image_bytes(3)
    image = image_of(data)
    staged = tmp_path / "staged.jpg"
    staged.write_bytes(data)
    placed = store.put_image(staged if as_file else data, sha256=image.sha256, image_format="JPEG")
    assert placed.relpath == stored_relpath(image.sha256, "JPEG")
    store.check_stored(placed.relpath, sha256=image.sha256, size=len(data))
    store.confirm_reuse(image)
    with pytest.raises(StoredFileProblem, match="bytes, not 1"):
        store.check_stored(placed.relpath, sha256=image.sha256, size=1)
    assert dict(store.stored_files()) == {placed.relpath: len(data)}
    store.index.remember([IndexEntry("http://h/a.jpg", image, placed.version)])
    assert store.index.lookup(["http://h/a.jpg", "http://h/b.jpg"]) == {"http://h/a.jpg": image}
    store.delete_images([placed.relpath])
    assert dict(store.stored_files()) == {}
    assert store.index.retain(set()) == 1
    assert store.index.lookup(["http://h/a.jpg"]) == {}


def test_files_snapshots_and_quarantine_alike(store: SnapshotStore) -> None:
    assert not store.has_snapshots()
    where = store.write("snapshots/01-a/index.html", b"<p>page</p>")
    assert where == store.location("snapshots/01-a/index.html")
    assert store.read("snapshots/01-a/index.html") == b"<p>page</p>"
    assert store.snapshot_ids() == []  # a page alone is no snapshot
    store.write("snapshots/01-a/manifest.json", b"{}")
    assert store.has_snapshots() and store.snapshot_ids() == ["01-a"]
    assert store.quarantine(b"junk", "01-a", "9-bad.jpg") == "quarantine/01-a/9-bad.jpg"
    store.delete_snapshot("01-a")
    assert store.snapshot_ids() == []
    with pytest.raises(FileNotFoundError):
        store.read("quarantine/01-a/9-bad.jpg")


def test_a_store_reached_through_a_linked_folder_reads_its_manifests(tmp_path: Path) -> None:
    record_snapshot(tmp_path / "real", "01-a", [1])
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert [m.snapshot_id for _, m in iter_manifests(tmp_path / "link")] == ["01-a"]
    # A link in a snapshot folder's place is never read through.
    (tmp_path / "real" / "snapshots" / "00-linked").symlink_to(tmp_path / "real/snapshots/01-a")
    assert [m.snapshot_id for _, m in iter_manifests(tmp_path / "link")] == ["01-a"]
