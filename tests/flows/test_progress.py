"""Progress moves while a batch is still downloading, not once per batch; validations overlap
the downloads without taking their slots."""

import re
from pathlib import Path
from typing import Any

import pytest
from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import State

from flows.snapshot import gallery_snapshot
from gallery_snapshot.config import SnapshotConfig, SourceSpec
from gallery_snapshot.demo_gallery import DemoGallery, bulk_catalogue

PROGRESS = re.compile(r"^(\d+)/10 images fetched, (\d+) validated")


def snapshot_of_bulk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, images: int, latency: float, workers: int
) -> State[Any]:
    """The flow's final state after a snapshot of ``images`` bulk JPEGs served ``latency``
    seconds each, with ``workers`` on the thread runner."""
    with DemoGallery(bulk_catalogue(images, kilobytes=10), latency=latency) as gallery:
        monkeypatch.setenv("IMGUR_CLIENT_ID", gallery.client_id)
        config = SnapshotConfig(
            source=SourceSpec(api_url=gallery.api_url),
            allowed_hosts=[gallery.image_host],
            out_dir=str(tmp_path),
            workers=workers,
        )
        return gallery_snapshot(config, return_state=True)


def test_progress_is_reported_inside_a_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Two batches of five images, one download at a time, 1 s an image: 5 s a batch, and
    # progress polled every 2 s sees the batch half done.
    with caplog.at_level("INFO", logger="prefect.flow_runs"):
        snapshot_of_bulk(tmp_path, monkeypatch, images=10, latency=1.0, workers=1).result()
    seen = [
        (int(match[1]), int(match[2]))
        for record in caplog.records
        if (match := PROGRESS.match(record.getMessage()))
    ]
    assert seen[-1] == (10, 10)
    fetched = [done for done, _ in seen]
    assert fetched == sorted(fetched)  # never goes back
    assert any(done % 5 for done in fetched), seen  # a line from the middle of a batch


def test_validations_start_as_their_downloads_end_and_never_take_a_download_slot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 8 images, 2 workers on threads: 2 slots of one thread each, 4 batches of 2 images.
    state = snapshot_of_bulk(tmp_path, monkeypatch, images=8, latency=0.3, workers=2)
    assert state.result()["counts"]["downloaded"] == 8
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[state.state_details.flow_run_id])
            )
        )
    downloads = {run.name.removeprefix("download_images"): run for run in runs}
    validations = {run.name.removeprefix("validate_images"): run for run in runs}
    spans = ["[1-2]", "[3-4]", "[5-6]", "[7-8]"]
    for span in spans:
        download, validation = downloads[span], validations[span]
        assert download.end_time and validation.created
        # submitted once its download is over, not waiting for it in a runner thread
        assert validation.created >= download.end_time, span
    events = sorted(
        (moment, step)
        for span in spans
        for moment, step in ((downloads[span].start_time, 1), (downloads[span].end_time, -1))
    )
    running = [sum(step for _, step in events[: index + 1]) for index in range(len(events))]
    assert max(running) == 2  # the plan's two slots, never more
