"""Object stores (obstore's ``file://`` backend) with recorded snapshots, written as a run writes
them."""

from __future__ import annotations

import hashlib

from gallery_snapshot.manifest import write_manifest
from gallery_snapshot.models import StoredImage
from gallery_snapshot.store import stored_relpath
from gallery_snapshot.store.contract import IndexEntry
from gallery_snapshot.store.objects import ObjectStore
from tests.support.images import image_bytes
from tests.support.manifests import snapshot_manifest
from tests.support.stores import downloaded


def record_snapshot(store: ObjectStore, snapshot_id: str, seeds: list[int]) -> None:
    """Images, index entries, a quarantined file and the manifest, as a run writes them."""
    records = []
    for rank, seed in enumerate(seeds, start=1):
        data = image_bytes(seed)
        image = StoredImage(
            sha256=hashlib.sha256(data).hexdigest(),
            format="JPEG",
            bytes=len(data),
            width=1,
            height=1,
        )
        path = stored_relpath(image.sha256, "JPEG")
        version = store.put(path, data)
        store.index.remember([IndexEntry(f"http://h/{seed}.jpg", image, version)])
        records.append(downloaded(seed, rank, path=path, sha256=image.sha256, size=image.bytes))
    store.put(f"quarantine/{snapshot_id}/9-bad.jpg", b"junk")
    write_manifest(store.url, snapshot_manifest(snapshot_id, records))
