from pathlib import Path
from typing import Any

from PIL import Image

from gallery_snapshot.manifest import write_manifest
from gallery_snapshot.report import (
    changes,
    markdown_report,
    previous_manifest,
    summary_row,
    write_contact_sheet,
)


def manifest(
    snapshot_id: str, statuses: dict[str, str], api_url: str = "http://a/3"
) -> dict[str, Any]:
    images = [
        {
            "id": image_id,
            "url": f"http://h/{image_id}.jpg",
            "rank": rank,
            "status": status,
            "path": f"images/h/{image_id}.jpg" if status in ("downloaded", "reused") else None,
            "error": None if status in ("downloaded", "reused") else "HTTP 404",
        }
        for rank, (image_id, status) in enumerate(statuses.items(), start=1)
    ]
    counts = {
        key: 0
        for key in (
            "links",
            "selected",
            "downloaded",
            "reused",
            "invalid",
            "gone",
            "failed",
            "skipped",
        )
    }
    for image in images:
        counts[image["status"]] += 1
    counts["links"] = counts["selected"] = len(images)
    return {
        "snapshot_id": snapshot_id,
        "source": {"kind": "gallery", "api_url": api_url},
        "counts": counts,
        "images": images,
        "skipped": [],
    }


def test_changes_and_report_against_the_previous_snapshot_of_the_same_source(
    tmp_path: Path,
) -> None:
    out = str(tmp_path)
    old = manifest("20260101T000000Z-aaaaaa", {"a": "downloaded", "b": "downloaded"})
    other_source = manifest("20260102T000000Z-bbbbbb", {"z": "downloaded"})
    other_source["source"]["kind"] = "tag"
    new = manifest(
        "20260103T000000Z-cccccc", {"a": "reused", "c": "downloaded", "d": "gone"}, "http://b/3"
    )
    for each in (old, other_source, new):
        write_manifest(out, each)
    previous = previous_manifest(out, new)
    assert previous is not None and previous["snapshot_id"] == old["snapshot_id"]
    assert changes(previous, new) == (["c"], ["b"])
    report = markdown_report(new, previous)
    assert "| gone | [d](http://h/d.jpg) | HTTP 404 |" in report
    assert "- new: 1 (c)" in report and "- dropped out: 1 (b)" in report
    assert "First snapshot" in markdown_report(old, None)
    assert previous_manifest(out, old) is None


def test_summary_row_has_counts_duration_and_rate() -> None:
    row = summary_row(manifest("s", {"a": "downloaded", "b": "reused", "c": "gone"}), seconds=2.0)
    assert row["downloaded"] == 1 and row["reused"] == 1 and row["gone"] == 1
    assert row["seconds"] == 2.0 and row["images_per_second"] == 1.0


def test_contact_sheet_tiles_the_stored_images(tmp_path: Path) -> None:
    shown = manifest("s", {"a": "downloaded", "b": "reused", "c": "gone"})
    for image_id, color in (("a", (255, 0, 0)), ("b", (0, 0, 255))):
        path = tmp_path / "images" / "h" / f"{image_id}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (300, 200), color).save(path, "JPEG")
    sheet = write_contact_sheet(str(tmp_path), shown, thumb=100)
    assert sheet == tmp_path / "snapshots" / "s" / "contact-sheet.jpg"
    with Image.open(sheet) as image:
        assert image.size == (200, 100)
        red, _, blue = image.convert("RGB").getpixel((50, 50))
        assert red > 200 and blue < 60  # the first tile is the first image
    assert write_contact_sheet(str(tmp_path), manifest("t", {"c": "gone"})) is None
