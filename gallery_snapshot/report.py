"""What a person reads about a snapshot: a summary table, a markdown report of problems and
changes since the previous snapshot of the same source, and a contact sheet of thumbnails."""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw

from gallery_snapshot.escaping import md_code
from gallery_snapshot.manifest import COUNT_KEYS, STORED, manifests_anywhere, source_key
from gallery_snapshot.store import store_named
from gallery_snapshot.store.layout import snapshot_file

CONTACT_SHEET = "contact-sheet.jpg"


def previous_manifest(out_dir: str, manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The latest earlier manifest of the same source in ``out_dir``, if any (files that are
    not manifests are skipped with a warning). Read newest first, so a store of a year of
    hourly snapshots reads a few manifests, not all of them (a GET each on object storage);
    never ``manifest``'s own, which a 100,000-image snapshot took ~1 s to read again."""
    source = source_key(manifest["source"])
    earlier = manifests_anywhere(out_dir, newest_first=True, before=manifest["snapshot_id"])
    for other in earlier:
        if source_key(other["source"]) == source:
            return other
    return None


def stored_ids(manifest: dict[str, Any]) -> list[str]:
    return [image["id"] for image in manifest["images"] if image["status"] in STORED]


def changes(
    previous: dict[str, Any] | None, current: dict[str, Any]
) -> tuple[list[str], list[str]]:
    """Image ids new in ``current`` and ids that dropped out since ``previous``."""
    now = stored_ids(current)
    before = stored_ids(previous) if previous else []
    now_set, before_set = set(now), set(before)  # once: a set per image made this quadratic
    return [i for i in now if i not in before_set], [i for i in before if i not in now_set]


def summary_rows(manifest: dict[str, Any], *, seconds: float) -> list[dict[str, Any]]:
    """The snapshot at a glance as (field, value) rows: a vertical table fits any screen."""
    counts = manifest["counts"]
    handled = counts["downloaded"] + counts["reused"]
    rate = f"{handled / seconds:.1f}" if seconds > 0 else "n/a"
    rows: list[tuple[str, Any]] = [("snapshot", manifest["snapshot_id"])]
    rows += [(key, counts[key]) for key in COUNT_KEYS]
    rows += [("duration", f"{seconds:.1f} s"), ("images/s", rate)]
    return [{"field": field, "value": value} for field, value in rows]


def _listed(lines: list[str], total: int, *, limit: int) -> list[str]:
    """The first ``limit`` lines, then how many more there are."""
    return lines[:limit] + ([f"- … and {total - limit} more"] if total > limit else [])


def markdown_report(
    manifest: dict[str, Any], previous: dict[str, Any] | None, *, limit: int = 50
) -> str:
    """Problems (invalid, gone, failed) and skipped links with their reasons, as lists whose
    reasons wrap (first ``limit`` of each), and changes since the previous snapshot. Every
    value from a manifest is a code span: a listing's text shows as text, never as markdown."""
    counts = manifest["counts"]
    lines = [
        f"# Snapshot {md_code(manifest['snapshot_id'])}",
        "",
        " · ".join(f"**{counts[key]}** {key}" for key in COUNT_KEYS),
        "",
    ]
    problems = [image for image in manifest["images"] if image["status"] not in STORED]
    lines += [f"## Problems ({len(problems)})", ""]
    if problems:
        entries = [
            f"- **{image['status']}** {md_code(image['id'])} ({md_code(image['url'])}): "
            + md_code(image["error"] or "")
            for image in problems[:limit]
        ]
        lines += _listed(entries, len(problems), limit=limit)
    else:
        lines.append("None: every selected image is stored and valid.")
    skipped = manifest["skipped"]
    lines += ["", f"## Skipped ({len(skipped)})", ""]
    if skipped:
        entries = [
            f"- {md_code(item['url'])}: {md_code(item['reason'])}" for item in skipped[:limit]
        ]
        lines += _listed(entries, len(skipped), limit=limit)
    else:
        lines.append("None: every link was selected.")
    lines.append("")
    new, dropped = changes(previous, manifest)
    if previous is None:
        lines += ["## Changes", "", "First snapshot of this source."]
    else:
        lines += [
            f"## Changes since {md_code(previous['snapshot_id'])}",
            "",
            f"- new: {len(new)}" + (f" ({', '.join(map(md_code, new[:limit]))})" if new else ""),
            f"- dropped out: {len(dropped)}"
            + (f" ({', '.join(map(md_code, dropped[:limit]))})" if dropped else ""),
        ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ContactSheet:
    location: str  # a path, or an object's URL
    data: bytes
    shown: int
    stored: int

    @property
    def note(self) -> str:
        """What the sheet shows: "64 of 250 shown" when capped."""
        if self.shown < self.stored:
            return f"{self.shown} of {self.stored} shown, in rank order"
        return f"all {self.stored} shown, in rank order"


def contact_sheet_markdown(sheet: ContactSheet, snapshot_id: str) -> str:
    """The contact sheet as markdown: the JPEG inlined, so the UI shows it wherever the file
    lives (a worker's disk, say); where it was written, as text."""
    encoded = base64.b64encode(sheet.data).decode("ascii")
    return (
        f"**{sheet.note}**, each labelled with its rank.\n\n"
        f"![contact sheet of snapshot {snapshot_id}](data:image/jpeg;base64,{encoded})\n\n"
        f"Written to {md_code(sheet.location)}\n"
    )


def write_contact_sheet(
    out_dir: str, manifest: dict[str, Any], *, thumb: int = 120, columns: int = 8, limit: int = 64
) -> ContactSheet | None:
    """A JPEG of thumbnails of the snapshot's first ``limit`` stored images (in rank order),
    each labelled with its rank, next to the manifest; None when there is nothing to show."""
    stored = [image for image in manifest["images"] if image["status"] in STORED]
    shown = stored[:limit]
    if not shown:
        return None
    store = store_named(out_dir)
    columns = min(columns, len(shown))
    rows = math.ceil(len(shown) / columns)
    sheet = Image.new("RGB", (columns * thumb, rows * thumb), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for index, image_record in enumerate(shown):
        with Image.open(io.BytesIO(store.read(image_record["path"]))) as image:
            image.draft("RGB", (thumb, thumb))  # JPEGs decode at a fraction of full size
            tile = image.convert("RGB")
        tile.thumbnail((thumb - 4, thumb - 4))
        left, top = (index % columns) * thumb, (index // columns) * thumb
        sheet.paste(tile, (left + (thumb - tile.width) // 2, top + (thumb - tile.height) // 2))
        label = f"#{image_record['rank']}"
        box = draw.textbbox((left + 4, top + 4), label)
        draw.rectangle((box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2), fill=(0, 0, 0))
        draw.text((left + 4, top + 4), label, fill=(255, 255, 255))
    buffer = io.BytesIO()
    sheet.save(buffer, "JPEG", quality=80)
    data = buffer.getvalue()
    target = store.write(snapshot_file(manifest["snapshot_id"], CONTACT_SHEET), data)
    return ContactSheet(location=target, data=data, shown=len(shown), stored=len(stored))
