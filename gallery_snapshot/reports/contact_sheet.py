"""The contact-sheet artifact: thumbnails of a snapshot's first stored images, written next
to its manifest and shown inline."""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass

from PIL import Image, ImageDraw

from gallery_snapshot.escaping import md_code
from gallery_snapshot.models import ImageRecord, Manifest
from gallery_snapshot.reports import Markdown, ReportArtifact, ReportInput
from gallery_snapshot.store import store_named
from gallery_snapshot.store.layout import snapshot_file

CONTACT_SHEET = "contact-sheet.jpg"


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
    out_dir: str, manifest: Manifest, *, thumb: int = 120, columns: int = 8, limit: int = 64
) -> ContactSheet | None:
    """A JPEG of thumbnails of the snapshot's first ``limit`` stored images (in rank order),
    each labelled with its rank, next to the manifest; None when there is nothing to show."""
    shown: list[ImageRecord] = []
    stored = 0
    for image_record in manifest.stored():
        stored += 1
        if len(shown) < limit:
            shown.append(image_record)
    if not shown:
        return None
    store = store_named(out_dir)
    columns = min(columns, len(shown))
    rows = math.ceil(len(shown) / columns)
    sheet = Image.new("RGB", (columns * thumb, rows * thumb), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for index, image_record in enumerate(shown):
        with Image.open(io.BytesIO(store.read(str(image_record.path)))) as image:
            image.draft("RGB", (thumb, thumb))  # JPEGs decode at a fraction of full size
            tile = image.convert("RGB")
        tile.thumbnail((thumb - 4, thumb - 4))
        left, top = (index % columns) * thumb, (index // columns) * thumb
        sheet.paste(tile, (left + (thumb - tile.width) // 2, top + (thumb - tile.height) // 2))
        label = f"#{image_record.rank}"
        box = draw.textbbox((left + 4, top + 4), label)
        draw.rectangle((box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2), fill=(0, 0, 0))
        draw.text((left + 4, top + 4), label, fill=(255, 255, 255))
    buffer = io.BytesIO()
    sheet.save(buffer, "JPEG", quality=80)
    data = buffer.getvalue()
    target = store.write(snapshot_file(manifest.snapshot_id, CONTACT_SHEET), data)
    return ContactSheet(location=target, data=data, shown=len(shown), stored=stored)


def render(report: ReportInput) -> Markdown | None:
    sheet = write_contact_sheet(report.out_dir, report.manifest)
    if sheet is None:
        return None
    markdown = contact_sheet_markdown(sheet, report.manifest.snapshot_id)
    return Markdown(markdown, written=sheet.location)


ARTIFACT = ReportArtifact(
    key="contact-sheet", description="Thumbnails of snapshot {snapshot_id}", render=render
)
