"""The snapshot's page: every value escaped, only stored files linked."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from gallery_snapshot.manifest import build_manifest
from gallery_snapshot.models import ImageRecord, Manifest, SkippedLink
from gallery_snapshot.snapshot_page import render_page, write_snapshot_page

SHA = "ab" * 32


def manifest() -> Manifest:
    records = [
        ImageRecord(
            url="https://i.imgur.com/b.jpg",
            id="second",
            rank=2,
            status="downloaded",
            path=f"images/ab/ab/{SHA}.jpg",
            sha256=SHA,
            width=3,
            height=4,
            format="JPEG",
        ),
        ImageRecord(
            url="javascript:alert(1)",
            id="<script>alert(1)</script>",
            rank=1,
            status="invalid",
            error="not an image <b>",
        ),
        ImageRecord(
            url="https://i.imgur.com/c.jpg",
            id="evil-path",
            rank=3,
            status="reused",
            path="../../../etc/passwd",
            sha256=SHA,
        ),
    ]
    return build_manifest(
        snapshot_id="s1",
        started_at="a",
        finished_at="b",
        source={},
        link_count=4,
        records=records,
        skipped=[SkippedLink(url="http://x/<i>", reason="video (<mp4>)")],
    )


def test_hostile_values_are_escaped_and_never_linked() -> None:
    page = render_page(manifest()).decode()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'href="javascript:' not in page and 'href="http' not in page
    assert "https://i.imgur.com/b.jpg" in page  # shown as text
    assert "not an image &lt;b&gt;" in page and "video (&lt;mp4&gt;)" in page
    assert "etc/passwd" not in page  # a path outside the store is shown as nothing


def test_images_appear_in_rank_order_linking_their_stored_files(tmp_path: Path) -> None:
    path = Path(write_snapshot_page(str(tmp_path), manifest()))
    assert path == tmp_path / "snapshots" / "s1" / "index.html"
    page = path.read_text()
    assert page.index("#1 ") < page.index("#2 ") < page.index("#3 ")
    assert f'<img src="../../images/ab/ab/{SHA}.jpg"' in page
    assert (path.parent / "../../images/ab/ab").resolve() == tmp_path / "images" / "ab" / "ab"


def test_writing_a_large_page_holds_little_more_than_its_bytes(tmp_path: Path) -> None:
    small = manifest()
    large = small.with_images(
        [
            image.model_copy(update={"rank": rank})
            for rank in range(5000)
            for image in small.images()
        ]
    )
    tracemalloc.start()
    try:
        path = Path(write_snapshot_page(str(tmp_path), large))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Joined and concatenated as one string, then encoded, the page held ~3x its size.
    assert peak < 1.5 * path.stat().st_size
