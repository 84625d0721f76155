"""The task that records a snapshot."""

from __future__ import annotations

from typing import Any, TypedDict

from prefect import task
from prefect.cache_policies import NO_CACHE

from gallery_snapshot.manifest import build_manifest, write_manifest
from gallery_snapshot.models import ImageRecord, Manifest, SkippedLink
from gallery_snapshot.snapshot_page import write_snapshot_page


class Recorded(TypedDict):
    document: Manifest  # the manifest as written
    manifest: str  # where it was written
    page: str  # where the snapshot's page was written


# Not cached: its inputs hold the time the run finished, so a retry never finds it, and its
# result (the whole manifest) would be written to the result storage for nothing.
@task(name="record_manifest", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def record_manifest(
    *,
    out_dir: str,
    snapshot_id: str,
    started_at: str,
    finished_at: str,
    source: dict[str, Any],
    link_count: int,
    records: list[ImageRecord],
    skipped: list[SkippedLink],
) -> Recorded:
    """Write the snapshot's page, then its manifest (last, so a manifest never names what is
    not there yet); return the manifest and where both went (``manifest``, ``page``), so the
    report needs not read tens of MB back."""
    manifest = build_manifest(
        snapshot_id=snapshot_id,
        started_at=started_at,
        finished_at=finished_at,
        source=source,
        link_count=link_count,
        records=records,
        skipped=skipped,
    )
    page = write_snapshot_page(out_dir, manifest)
    path = write_manifest(out_dir, manifest)
    return {"document": manifest, "manifest": path, "page": page}
