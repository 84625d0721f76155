"""Manifests for tests, made by the project's own ``build_manifest``: a fixture has the shape
the flow writes, and follows it when it changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gallery_snapshot.manifest import build_manifest, read_manifest
from gallery_snapshot.models import STORED, ImageRecord, ImageStatus, Manifest, SkippedLink

SHA = "0" * 64


def manifest_of(
    snapshot_id: str,
    records: list[ImageRecord],
    *,
    source: dict[str, Any] | None = None,
    started: str = "2026-01-01T00:00:00+00:00",
    skipped: list[SkippedLink] | None = None,
) -> Manifest:
    """A manifest of ``records`` and ``skipped``, each link listed either selected or skipped."""
    skipped = skipped or []
    return build_manifest(
        snapshot_id=snapshot_id,
        started_at=started,
        finished_at=started,
        source={"kind": "urls", "urls_file": "urls.txt"} if source is None else source,
        link_count=len(records) + len(skipped),
        records=records,
        skipped=skipped,
    )


def image(image_id: str, rank: int, status: ImageStatus, **fields: Any) -> ImageRecord:
    """The record of image ``image_id`` (``http://h/<id>.jpg``): a stored one at a path of
    the old layout, with a made-up sha256; any other with the error "HTTP 404"."""
    stored = status in STORED
    defaults: dict[str, Any] = {
        "path": f"images/h/{image_id}.jpg" if stored else None,
        "sha256": SHA if stored else None,
        "error": None if stored else "HTTP 404",
    }
    return ImageRecord(
        url=f"http://h/{image_id}.jpg",
        id=image_id,
        rank=rank,
        status=status,
        **{**defaults, **fields},
    )


def with_statuses(
    snapshot_id: str, statuses: dict[str, ImageStatus], api_url: str = "http://a/3"
) -> Manifest:
    """A snapshot of a gallery whose images (by id) ended as ``statuses`` say."""
    records = [image(i, rank, status) for rank, (i, status) in enumerate(statuses.items(), 1)]
    return manifest_of(snapshot_id, records, source={"kind": "gallery", "api_url": api_url})


def snapshot_manifest(
    snapshot_id: str, records: list[ImageRecord], *, source: str = "a", started: str = ""
) -> Manifest:
    """A manifest of ``records``, of the URLs-file source ``source``, started on the day
    its id begins with (``"01-a"``: 2026-11-01) unless ``started`` says."""
    return manifest_of(
        snapshot_id,
        records,
        source={"kind": "urls", "urls_file": source},
        started=started or f"2026-11-{snapshot_id[:2]}T00:00:00+00:00",
    )


def read_document(location: str | Path) -> dict[str, Any]:
    """The manifest at ``location`` (a path or an object's URL), checked as the project reads
    it, as its JSON document: what tests compare and index."""
    return read_manifest(location).as_document()
