"""Progress moves while a batch is still downloading, not once per batch."""

import re
from pathlib import Path

import pytest

from flows.snapshot import gallery_snapshot
from gallery_snapshot.config import SnapshotConfig, SourceSpec
from gallery_snapshot.demo_gallery import DemoGallery, bulk_catalogue

PROGRESS = re.compile(r"^(\d+)/10 images fetched, (\d+) validated")


def test_progress_is_reported_inside_a_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Two batches of five images, one download at a time, 1 s an image: 5 s a batch, and
    # progress polled every 2 s sees the batch half done.
    with DemoGallery(bulk_catalogue(10, kilobytes=10), latency=1.0) as gallery:
        monkeypatch.setenv("IMGUR_CLIENT_ID", gallery.client_id)
        config = SnapshotConfig(
            source=SourceSpec(api_url=gallery.api_url),
            allowed_hosts=[gallery.image_host],
            out_dir=str(tmp_path),
            workers=1,
        )
        with caplog.at_level("INFO", logger="prefect.flow_runs"):
            gallery_snapshot(config)
    seen = [
        (int(match[1]), int(match[2]))
        for record in caplog.records
        if (match := PROGRESS.match(record.getMessage()))
    ]
    assert seen[-1] == (10, 10)
    fetched = [done for done, _ in seen]
    assert fetched == sorted(fetched)  # never goes back
    assert any(done % 5 for done in fetched), seen  # a line from the middle of a batch
