"""The task that records a snapshot."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from gallery_snapshot.models import ImageRecord, SkippedLink
from gallery_snapshot.pipeline import RecordedSnapshot, record_snapshot


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
) -> RecordedSnapshot:
    """Write the snapshot's page, then its manifest; return the manifest and where both went,
    so the report needs not read tens of MB back."""
    return record_snapshot(
        out_dir,
        snapshot_id=snapshot_id,
        started_at=started_at,
        finished_at=finished_at,
        source=source,
        link_count=link_count,
        records=records,
        skipped=skipped,
    )
