"""The summary artifact: the snapshot's counts, duration and rate as a table."""

from __future__ import annotations

from typing import Any

from gallery_snapshot.manifest import COUNT_KEYS
from gallery_snapshot.models import Manifest
from gallery_snapshot.reports import ReportArtifact, ReportInput, Table


def summary_rows(manifest: Manifest, *, seconds: float) -> list[dict[str, Any]]:
    """The snapshot at a glance as (field, value) rows: a vertical table fits any screen."""
    counts = manifest.counts
    handled = counts.downloaded + counts.reused
    rate = f"{handled / seconds:.1f}" if seconds > 0 else "n/a"
    rows: list[tuple[str, Any]] = [("snapshot", manifest.snapshot_id)]
    rows += [(key, getattr(counts, key)) for key in COUNT_KEYS]
    rows += [("duration", f"{seconds:.1f} s"), ("images/s", rate)]
    return [{"field": field, "value": value} for field, value in rows]


def render(report: ReportInput) -> Table:
    return Table(summary_rows(report.manifest, seconds=report.seconds))


ARTIFACT = ReportArtifact(
    key="summary", description="Counts of snapshot {snapshot_id}", render=render
)
