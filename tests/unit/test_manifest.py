import json
from pathlib import Path

from gallery_snapshot.manifest import build_manifest, status_counts, summary_table, write_manifest
from gallery_snapshot.models import ImageRecord, SkippedLink


def record(rank: int, status: str) -> ImageRecord:
    return ImageRecord.model_validate(
        {"url": f"https://i.imgur.com/{rank}.jpg", "id": str(rank), "rank": rank, "status": status}
    )


def test_manifest_counts_orders_and_writes_atomically(tmp_path: Path) -> None:
    manifest = build_manifest(
        snapshot_id="s1",
        started_at="a",
        finished_at="b",
        source={"kind": "gallery"},
        link_count=7,
        records=[record(3, "gone"), record(1, "downloaded"), record(2, "reused")],
        skipped=[SkippedLink(url="u", id="x", reason="animated (image/gif)")],
    )
    assert manifest["counts"] == {
        "links": 7,
        "selected": 3,
        "downloaded": 1,
        "reused": 1,
        "invalid": 0,
        "gone": 1,
        "failed": 0,
        "skipped": 1,
    }
    assert [image["rank"] for image in manifest["images"]] == [1, 2, 3]
    assert set(manifest["images"][0]) == {
        "url",
        "id",
        "rank",
        "status",
        "path",
        "sha256",
        "bytes",
        "width",
        "height",
        "format",
        "error",
    }
    path = Path(write_manifest(str(tmp_path), manifest))
    assert path == tmp_path / "snapshots" / "s1" / "manifest.json"
    assert json.loads(path.read_text()) == manifest
    assert [p.name for p in path.parent.iterdir()] == ["manifest.json"]  # no temporary left
    assert "downloaded       1" in summary_table(manifest)
    assert status_counts([record(1, "gone"), record(2, "gone")]) == "2 gone"
