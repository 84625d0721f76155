from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from gallery_snapshot import manifest as manifest_module
from gallery_snapshot.changes import with_changes
from gallery_snapshot.manifest import write_manifest
from gallery_snapshot.models import Manifest, SkippedLink
from gallery_snapshot.reports import previous_manifest
from gallery_snapshot.reports.contact_sheet import write_contact_sheet
from gallery_snapshot.reports.problems import markdown_report
from gallery_snapshot.reports.summary import summary_rows
from tests.support.manifests import image, manifest_of
from tests.support.manifests import with_statuses as manifest


def stored_image(root: Path, image_id: str, color: tuple[int, int, int]) -> None:
    path = root / "images" / "h" / f"{image_id}.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (300, 200), color).save(path, "JPEG")


def test_changes_and_report_against_the_previous_snapshot_of_the_same_source(
    tmp_path: Path,
) -> None:
    out = str(tmp_path)
    old = manifest("20260101T000000Z-aaaaaa", {"a": "downloaded", "b": "downloaded"})
    other_source = manifest_of(
        "20260102T000000Z-bbbbbb",
        [image("z", 1, "downloaded")],
        source={"kind": "tag", "api_url": "http://a/3"},
    )
    new = manifest(
        "20260103T000000Z-cccccc", {"a": "reused", "c": "downloaded", "d": "gone"}, "http://b/3"
    )
    for each in (old, other_source, new):
        write_manifest(out, each)
    previous = previous_manifest(out, new)
    assert previous == old
    report = markdown_report(with_changes(new, previous))
    assert "- **gone** `d` (`http://h/d.jpg`): `HTTP 404`" in report
    assert "- new: 1 (`http://h/c.jpg`)" in report
    assert "- vanished: 1 (`http://h/b.jpg`)" in report
    assert "First snapshot" in markdown_report(old)
    assert previous_manifest(out, old) is None


@pytest.mark.parametrize("object_store", [False, True])
def test_the_previous_snapshot_is_found_without_reading_every_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, object_store: bool
) -> None:
    out = f"file://{tmp_path}/bucket" if object_store else str(tmp_path)
    history = [
        manifest(f"202601{day:02d}T000000Z-aaaaaa", {"a": "downloaded"}) for day in range(1, 29)
    ]
    for each in history:
        write_manifest(out, each)
    parsed: list[str] = []
    real_parse = manifest_module.parse_manifest

    def counting_parse(data: bytes, **kwargs: Any) -> Manifest:
        parsed.append(kwargs["where"])
        return real_parse(data, **kwargs)

    monkeypatch.setattr(manifest_module, "parse_manifest", counting_parse)
    previous = previous_manifest(out, history[-1])
    assert previous is not None and previous.snapshot_id == history[-2].snapshot_id
    assert parsed == [f"{out}/snapshots/{history[-2].snapshot_id}/manifest.json"]  # not all 28


def test_summary_is_a_vertical_table_with_duration_and_rate() -> None:
    rows = summary_rows(manifest("s", {"a": "downloaded", "b": "reused", "c": "gone"}), seconds=2.0)
    assert all(set(row) == {"field", "value"} for row in rows)
    table = {row["field"]: row["value"] for row in rows}
    assert table["snapshot"] == "s"
    assert (table["downloaded"], table["reused"], table["gone"]) == (1, 1, 1)
    assert table["duration"] == "2.0 s" and table["images/s"] == "1.0"


def test_report_lists_skipped_links_with_reasons_then_a_count() -> None:
    skipped = [
        SkippedLink(url=f"http://h/{n}.gif", id=str(n), reason=f"animated (image/gif) {n}")
        for n in range(53)
    ]
    shown = manifest_of("s", [image("a", 1, "downloaded")], skipped=skipped)
    report = markdown_report(shown)
    assert "## Skipped (53)" in report
    assert "- `http://h/0.gif`: `animated (image/gif) 0`" in report
    assert "- `http://h/49.gif`: `animated (image/gif) 49`" in report
    assert "http://h/50.gif" not in report and "- … and 3 more" in report
    assert "|" not in report  # lists, whose reasons wrap; table cells get cut off


def test_contact_sheet_tiles_the_stored_images(tmp_path: Path) -> None:
    shown = manifest("s", {"a": "downloaded", "b": "reused", "c": "gone"})
    for image_id, color in (("a", (255, 0, 0)), ("b", (0, 0, 255))):
        stored_image(tmp_path, image_id, color)
    sheet = write_contact_sheet(str(tmp_path), shown, thumb=100)
    assert sheet is not None
    assert sheet.location == str(tmp_path / "snapshots" / "s" / "contact-sheet.jpg")
    assert (sheet.shown, sheet.stored, sheet.note) == (2, 2, "all 2 shown, in rank order")
    with Image.open(sheet.location) as image:
        assert image.size == (200, 100)
        rgb = image.convert("RGB")
        red, _, blue = rgb.getpixel((50, 50))
        assert red > 200 and blue < 60  # the first tile is the first image
        # Its rank label: white text on black in the tile's corner.
        corner = [rgb.getpixel((x, y)) for x in range(2, 20) for y in range(2, 16)]
        assert max(map(sum, corner)) > 600 and min(map(sum, corner)) < 150
    assert write_contact_sheet(str(tmp_path), manifest("t", {"c": "gone"})) is None


def test_capped_contact_sheet_says_how_many_it_shows(tmp_path: Path) -> None:
    many = manifest("s", {f"i{n}": "downloaded" for n in range(5)})
    for n in range(5):
        stored_image(tmp_path, f"i{n}", (0, 128, 0))
    sheet = write_contact_sheet(str(tmp_path), many, thumb=50, columns=2, limit=3)
    assert sheet is not None
    assert sheet.note == "3 of 5 shown, in rank order"
    with Image.open(sheet.location) as image:
        assert image.size == (100, 100)
