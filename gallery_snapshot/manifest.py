"""The snapshot manifest: what was listed, selected, stored and skipped, and why."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from gallery_snapshot.models import ImageRecord, SkippedLink
from gallery_snapshot.store import Store, write_atomically

STATUSES = ("downloaded", "reused", "invalid", "gone", "failed")
COUNT_KEYS = ("links", "selected", *STATUSES, "skipped")


def status_counts(records: list[ImageRecord]) -> str:
    """``"3 downloaded, 1 gone"``: a one-line tally for progress logs."""
    counts: Counter[str] = Counter(record.status for record in records)
    return ", ".join(f"{counts[status]} {status}" for status in STATUSES if counts[status])


def build_manifest(
    *,
    snapshot_id: str,
    started_at: str,
    finished_at: str,
    source: dict[str, Any],
    link_count: int,
    records: list[ImageRecord],
    skipped: list[SkippedLink],
) -> dict[str, Any]:
    """The manifest as a JSON-ready dict; images in rank order."""
    images = sorted(records, key=lambda record: record.rank)
    by_status: Counter[str] = Counter(record.status for record in images)
    counts = {"links": link_count, "selected": len(images)}
    counts.update({status: by_status.get(status, 0) for status in STATUSES})
    counts["skipped"] = len(skipped)
    return {
        "snapshot_id": snapshot_id,
        "started_at": started_at,
        "finished_at": finished_at,
        "source": source,
        "counts": counts,
        "images": [record.model_dump() for record in images],
        "skipped": [item.model_dump() for item in skipped],
    }


def write_manifest(out_dir: str, manifest: dict[str, Any]) -> str:
    """Write the manifest atomically; return its path."""
    path = Store(out_dir).manifest_path(manifest["snapshot_id"])
    write_atomically(path, json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8"))
    return str(path)


def read_manifest(path: str | Path) -> dict[str, Any]:
    """A manifest as written by ``write_manifest``."""
    with open(path, encoding="utf-8") as handle:
        manifest: dict[str, Any] = json.load(handle)
    return manifest


def summary_table(manifest: dict[str, Any]) -> str:
    """The counts as a small aligned text table."""
    counts = manifest["counts"]
    width = max(len(key) for key in COUNT_KEYS)
    return "\n".join(f"  {key:<{width}}  {counts[key]:>6}" for key in COUNT_KEYS)
