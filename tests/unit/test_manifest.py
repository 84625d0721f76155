import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from gallery_snapshot.manifest import (
    ManifestProblem,
    build_manifest,
    encode_document,
    encode_manifest,
    parse_manifest,
    read_manifest,
    status_counts,
    summary_table,
    write_manifest,
)
from gallery_snapshot.models import Counts, ImageRecord, ImageStatus, Manifest, SkippedLink
from tests.support.manifests import image


def record(rank: int, status: ImageStatus) -> ImageRecord:
    return image(str(rank), rank, status)


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
    assert manifest.counts == Counts(
        links=7, selected=3, downloaded=1, reused=1, invalid=0, gone=1, failed=0, skipped=1
    )
    assert [image.rank for image in manifest.images()] == [1, 2, 3]
    document = manifest.as_document()
    assert list(document) == [
        "snapshot_id",
        "started_at",
        "finished_at",
        "source",
        "counts",
        "changes",
        "images",
        "skipped",
    ]
    assert set(document["images"][0]) == {
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
    assert json.loads(path.read_text()) == document
    assert read_manifest(path) == manifest
    assert [p.name for p in path.parent.iterdir()] == ["manifest.json"]  # no temporary left
    assert "downloaded       1" in summary_table(manifest.counts)
    assert status_counts([record(1, "gone"), record(2, "gone")]) == "2 gone"


def hostile_manifest(images: int) -> Manifest:
    """A manifest with what JSON escapes or leaves alone: quotes, control characters, non-ASCII,
    line separators; a nested source; an entry that is not a flat object."""
    records = [
        ImageRecord(
            url=f'https://i.imgur.com/{rank}".jpg?q=\\\u2028é',
            id=f"{rank}\x00\x1f\x7f",
            rank=rank,
            status="downloaded" if rank % 3 else "invalid",
            path=f"images/ab/cd/{'ab' * 32}.jpg" if rank % 3 else None,
            sha256="ab" * 32 if rank % 3 else None,
            bytes=rank * 1000,
            width=rank,
            height=2,
            format="JPEG",
            error=None if rank % 3 else "cannot decode: \n<b>ünïcode</b>\t💥",
        )
        for rank in range(1, images + 1)
    ]
    manifest = build_manifest(
        snapshot_id="s1",
        started_at="a",
        finished_at="b",
        source={"kind": "urls", "nested": {"list": [1, 2.5, None, True], "empty": {}}},
        link_count=images + 1,
        records=records,
        skipped=[SkippedLink(url="u", id=None, reason="animated (image/gif)")],
    )
    return manifest


@pytest.mark.parametrize("images", [0, 1, 7])
def test_manifest_bytes_are_those_of_json_dumps_with_indent(tmp_path: Path, images: int) -> None:
    manifest = hostile_manifest(images)
    document = manifest.as_document()
    reference = json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8")
    assert encode_manifest(manifest) == reference
    odd: dict[str, Any] = {**document, "skipped": [{}, {"nested": [1]}, 3, []], "extra": []}
    assert encode_document(odd) == json.dumps(odd, indent=2, ensure_ascii=False).encode("utf-8")
    streamed = {**odd, "images": iter(odd["images"]), "extra": iter([])}
    assert encode_document(streamed) == encode_document(odd)
    assert Path(write_manifest(str(tmp_path), manifest)).read_bytes() == reference


def test_encoding_a_large_manifest_holds_little_more_than_its_bytes() -> None:
    manifest = hostile_manifest(5000)
    tracemalloc.start()
    try:
        data = encode_manifest(manifest)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # json.dumps(indent=2) held every small piece at once: ~9x the result.
    assert peak < 2 * len(data)


def test_reading_a_manifest_checks_every_entry(tmp_path: Path) -> None:
    manifest = hostile_manifest(3)
    data = encode_manifest(manifest)
    assert parse_manifest(data, where="m") == manifest
    document = manifest.as_document()
    first = document["images"][0]
    for entry, problem in (
        ({"images": [{**first, "sha256": None}]}, "image 1 is downloaded without"),
        ({"images": [{**first, "status": "lost"}]}, "validation error"),
        ({"images": ["x"]}, "validation error"),
        ({"skipped": [{"url": "u"}]}, "validation error"),
    ):
        with pytest.raises(ManifestProblem, match=problem):
            parse_manifest(json.dumps({**document, **entry}).encode(), where="m")


def test_reading_a_large_manifest_makes_no_model_of_every_image() -> None:
    records = [record(rank, "gone") for rank in range(1, 5001)]
    data = encode_manifest(
        build_manifest(
            snapshot_id="s1",
            started_at="a",
            finished_at="b",
            source={},
            link_count=5000,
            records=records,
            skipped=[],
        )
    )

    def read_every_image(data: bytes) -> int:
        return sum(1 for _ in parse_manifest(data, where="m").images())

    peaks = []
    for read in (json.loads, lambda data: parse_manifest(data, where="m"), read_every_image):
        tracemalloc.start()
        try:
            read(data)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    # 5,000 ImageRecords at once came to more than the parsed JSON itself: the images are
    # made models one at a time, when reached.
    assert peaks[1] < 1.2 * peaks[0] and peaks[2] < 1.2 * peaks[0]


def test_a_built_manifest_holds_the_records_themselves() -> None:
    """At 100,000 images the flow holds every record already: a dict (or a copy) of each for
    the manifest came to ~150 MB more."""
    records = [record(2, "gone"), record(1, "downloaded")]
    manifest = build_manifest(
        snapshot_id="s1",
        started_at="a",
        finished_at="b",
        source={},
        link_count=2,
        records=records,
        skipped=[],
    )
    assert [id(image) for image in manifest.images()] == [id(records[1]), id(records[0])]
