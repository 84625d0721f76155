"""The trend artifact: the source's last snapshots as a table (counts, changes, rate), so the
Artifacts page shows how a source moves, not only its latest run. Read from the store's
history (``history.json``: one read, whatever the number of snapshots)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gallery_snapshot.history import Snapshot, snapshots
from gallery_snapshot.manifest import source_key
from gallery_snapshot.reports import ReportArtifact, ReportInput, Table

TREND_LENGTH = 20  # snapshots shown, the latest last
CHANGE_KEYS = ("new", "vanished", "came_back", "changed")


def _seconds(started: str, finished: str) -> float | None:
    try:
        return (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()
    except ValueError:  # a manifest written by hand, or by an older tool
        return None


def trend_row(snapshot: Snapshot) -> dict[str, Any]:
    """One snapshot's line: its counts, its changes ("" for a first snapshot) and its rate."""
    header = snapshot.header
    counts, changes = header.counts, header.changes
    stored = counts.downloaded + counts.reused
    seconds = _seconds(header.started_at, header.finished_at)
    row: dict[str, Any] = {
        "snapshot": header.snapshot_id,
        "finished": header.finished_at,
        "stored": stored,
        "gone": counts.gone,
        "failed": counts.failed + counts.invalid,
    }
    for key in CHANGE_KEYS:
        row[key.replace("_", " ")] = getattr(changes.counts, key) if changes else ""
    row["images/s"] = f"{stored / seconds:.1f}" if seconds else "n/a"
    return row


def trend_rows(
    found: list[Snapshot], source: str, *, length: int = TREND_LENGTH
) -> list[dict[str, Any]]:
    """The last ``length`` snapshots of ``source`` (a ``source_key``), oldest first."""
    line = [snapshot for snapshot in found if snapshot.source == source]
    return [trend_row(snapshot) for snapshot in line[-length:]]


def render(report: ReportInput) -> Table | None:
    rows = trend_rows(snapshots(report.out_dir), source_key(report.manifest.source))
    return Table(rows) if rows else None


ARTIFACT = ReportArtifact(
    key="trend", description="The source's last snapshots, up to {snapshot_id}", render=render
)
