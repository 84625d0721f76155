"""The snapshot manifest: what was listed, selected, stored and skipped, and why."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gallery_snapshot.errors import StoreError
from gallery_snapshot.models import ImageRecord, SkippedLink
from gallery_snapshot.store import Store, write_atomically

STATUSES = ("downloaded", "reused", "invalid", "gone", "failed")
STORED = ("downloaded", "reused")
COUNT_KEYS = ("links", "selected", *STATUSES, "skipped")

logger = logging.getLogger(__name__)


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
    """The manifest as a JSON-ready dict; images in rank order. Records that validation
    marked ``skipped`` (stored images this run does not want) join the skipped links."""
    images = sorted(
        (record for record in records if record.status != "skipped"), key=lambda r: r.rank
    )
    skipped = skipped + [
        SkippedLink(url=record.url, id=record.id, reason=record.error or "not wanted")
        for record in records
        if record.status == "skipped"
    ]
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
    """A manifest as written by ``write_manifest``; ValueError when the file is not one."""
    with open(path, encoding="utf-8") as handle:
        manifest = json.load(handle)
    if not _is_manifest(manifest):
        raise ValueError("not a gallery-snapshot manifest")
    return manifest  # type: ignore[no-any-return]


def _is_manifest(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("snapshot_id"), str)
        and isinstance(value.get("source"), dict)
        and isinstance(value.get("images"), list)
        and all(isinstance(image, dict) for image in value["images"])
    )


def iter_manifests(
    out_dir: str | Path, *, strict: bool = False
) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every manifest under ``out_dir``'s snapshots, oldest first, with its path. A file that
    is not a manifest is skipped with a warning; so is one that cannot be read, unless
    ``strict`` (for prune, which must know everything a snapshot references)."""
    for path in sorted(Path(out_dir, "snapshots").glob("*/manifest.json")):
        try:
            yield path, read_manifest(path)
        except OSError as exc:
            if strict:
                raise StoreError(f"cannot read {path}: {exc.strerror}") from None
            logger.warning("skipping %s: %s", path, exc.strerror)
        except ValueError as exc:  # JSON's errors are ValueErrors too
            logger.warning("skipping %s: %s", path, exc)


def stored_images(manifest: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """``(path, sha256)`` of every image the manifest says is stored."""
    for image in manifest["images"]:
        path, sha256 = image.get("path"), image.get("sha256")
        if image.get("status") in STORED and isinstance(path, str) and isinstance(sha256, str):
            yield path, sha256


def summary_table(manifest: dict[str, Any]) -> str:
    """The counts as a small aligned text table."""
    counts = manifest["counts"]
    width = max(len(key) for key in COUNT_KEYS)
    return "\n".join(f"  {key:<{width}}  {counts[key]:>6}" for key in COUNT_KEYS)
