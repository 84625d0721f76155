"""What a person reads about a snapshot: a summary row, a markdown report of problems and
changes since the previous snapshot of the same source, and a contact sheet of thumbnails."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

from PIL import Image

from gallery_snapshot.manifest import COUNT_KEYS, read_manifest
from gallery_snapshot.store import Store, write_atomically

CONTACT_SHEET = "contact-sheet.jpg"
STORED = ("downloaded", "reused")


def same_source(first: dict[str, Any], second: dict[str, Any]) -> bool:
    """Whether two manifests' sources name the same listing (the API's address may move,
    as the demo gallery's port does)."""

    def strip(source: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in source.items() if key != "api_url"}

    return strip(first) == strip(second)


def previous_manifest(out_dir: str, manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The latest earlier manifest of the same source in ``out_dir``, if any."""
    earlier: list[dict[str, Any]] = []
    for path in (Path(out_dir) / "snapshots").glob("*/manifest.json"):
        try:
            other = read_manifest(path)
        except (OSError, ValueError):
            continue
        if other.get("snapshot_id", "") < manifest["snapshot_id"] and same_source(
            other.get("source", {}), manifest["source"]
        ):
            earlier.append(other)
    return max(earlier, key=lambda other: str(other["snapshot_id"]), default=None)


def stored_ids(manifest: dict[str, Any]) -> list[str]:
    return [image["id"] for image in manifest["images"] if image["status"] in STORED]


def changes(
    previous: dict[str, Any] | None, current: dict[str, Any]
) -> tuple[list[str], list[str]]:
    """Image ids new in ``current`` and ids that dropped out since ``previous``."""
    now = stored_ids(current)
    before = stored_ids(previous) if previous else []
    return [i for i in now if i not in set(before)], [i for i in before if i not in set(now)]


def summary_row(manifest: dict[str, Any], *, seconds: float) -> dict[str, Any]:
    """The manifest's counts, the duration and the rate, as one table row."""
    counts = manifest["counts"]
    handled = counts["downloaded"] + counts["reused"]
    row: dict[str, Any] = {"snapshot": manifest["snapshot_id"]}
    row.update({key: counts[key] for key in COUNT_KEYS})
    row["seconds"] = round(seconds, 1)
    row["images_per_second"] = round(handled / seconds, 1) if seconds > 0 else None
    return row


def markdown_report(manifest: dict[str, Any], previous: dict[str, Any] | None) -> str:
    """Problems (invalid, gone, failed, with reasons) and changes since the previous snapshot."""
    counts = manifest["counts"]
    lines = [
        f"# Snapshot {manifest['snapshot_id']}",
        "",
        " · ".join(f"**{counts[key]}** {key}" for key in COUNT_KEYS),
        "",
    ]
    problems = [image for image in manifest["images"] if image["status"] not in STORED]
    lines.append(f"## Problems ({len(problems)})")
    lines.append("")
    if problems:
        lines += ["| status | image | reason |", "|---|---|---|"]
        lines += [
            f"| {image['status']} | [{image['id']}]({image['url']}) | {image['error'] or ''} |"
            for image in problems
        ]
    else:
        lines.append("None: every selected image is stored and valid.")
    lines.append("")
    new, dropped = changes(previous, manifest)
    if previous is None:
        lines += ["## Changes", "", "First snapshot of this source."]
    else:
        lines += [
            f"## Changes since {previous['snapshot_id']}",
            "",
            f"- new: {len(new)}" + (f" ({', '.join(new[:50])})" if new else ""),
            f"- dropped out: {len(dropped)}" + (f" ({', '.join(dropped[:50])})" if dropped else ""),
        ]
    return "\n".join(lines) + "\n"


def write_contact_sheet(
    out_dir: str, manifest: dict[str, Any], *, thumb: int = 120, columns: int = 8, limit: int = 64
) -> Path | None:
    """A JPEG of thumbnails of the snapshot's stored images (in rank order), next to the
    manifest; None when there is nothing to show."""
    store = Store(out_dir)
    paths = [
        store.root / image["path"] for image in manifest["images"] if image["status"] in STORED
    ]
    paths = paths[:limit]
    if not paths:
        return None
    columns = min(columns, len(paths))
    rows = math.ceil(len(paths) / columns)
    sheet = Image.new("RGB", (columns * thumb, rows * thumb), (24, 24, 24))
    for index, path in enumerate(paths):
        with Image.open(path) as image:
            image.draft("RGB", (thumb, thumb))  # JPEGs decode at a fraction of full size
            tile = image.convert("RGB")
        tile.thumbnail((thumb - 4, thumb - 4))
        x = (index % columns) * thumb + (thumb - tile.width) // 2
        y = (index // columns) * thumb + (thumb - tile.height) // 2
        sheet.paste(tile, (x, y))
    buffer = io.BytesIO()
    sheet.save(buffer, "JPEG", quality=80)
    target = store.manifest_path(manifest["snapshot_id"]).with_name(CONTACT_SHEET)
    write_atomically(target, buffer.getvalue())
    return target
