"""Stores with recorded snapshots, made through the store's own commit and manifest code."""

from __future__ import annotations

import hashlib
from pathlib import Path

from gallery_snapshot.manifest import write_manifest
from gallery_snapshot.models import ImageRecord
from gallery_snapshot.store.local import LocalStore as Store
from gallery_snapshot.store.migration import upgrade_store
from tests.support.images import image_bytes
from tests.support.manifests import snapshot_manifest


def store_image(out: Path, seed: int) -> tuple[str, str]:
    data = image_bytes(seed)
    staged = out / f"staged-{seed}"
    staged.parent.mkdir(parents=True, exist_ok=True)
    staged.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    return Store(out).commit(staged, sha256=sha, image_format="JPEG"), sha


def downloaded(seed: int, rank: int, *, path: str, sha256: str, size: int) -> ImageRecord:
    """The manifest record of image ``seed`` (``http://h/<seed>.jpg``), stored at ``path``."""
    return ImageRecord(
        url=f"http://h/{seed}.jpg",
        id=str(seed),
        rank=rank,
        status="downloaded",
        path=path,
        sha256=sha256,
        bytes=size,
    )


def record_snapshot(
    out: Path, snapshot_id: str, seeds: list[int], *, source: str = "a", started: str = ""
) -> None:
    records = []
    for rank, seed in enumerate(seeds, start=1):
        path, sha = store_image(out, seed)
        size = (out / path).stat().st_size
        records.append(downloaded(seed, rank, path=path, sha256=sha, size=size))
    manifest = snapshot_manifest(snapshot_id, records, source=source, started=started)
    write_manifest(str(out), manifest)


def store_with_a_snapshot(root: Path) -> Path:
    """A store as the flow leaves it: one snapshot, and the layout marker."""
    record_snapshot(root, "01-a", [1])
    upgrade_store(Store(root))
    return root
