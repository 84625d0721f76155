"""Progress moves while a batch is still downloading, not once per batch; validations overlap
the downloads without taking their slots."""

import re
from pathlib import Path
from typing import Any

import pytest
from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import State, TaskRun

from flows.snapshot import gallery_snapshot
from flows.task_runners import DOWNLOADS_IN_FLIGHT
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


def task_runs_of(state: State[Any]) -> dict[str, TaskRun]:
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[state.state_details.flow_run_id])
            )
        )
    return {run.name: run for run in runs}


def test_progress_is_reported_inside_a_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Batches of 3, 2, 2, 1, 1 and 1 images, one download at a time, 1 s an image: progress
    # polled every 2 s reports the first batch before it ends.
    with caplog.at_level("INFO", logger="prefect.flow_runs"):
        state = snapshot_of_bulk(tmp_path, monkeypatch, images=10, latency=1.0, workers=1)
    assert state.result()["counts"]["downloaded"] == 10
    seen = [
        (int(match[1]), int(match[2]), record.created)
        for record in caplog.records
        if (match := PROGRESS.match(record.getMessage()))
    ]
    assert seen[-1][:2] == (10, 10)
    fetched = [done for done, _, _ in seen]
    assert fetched == sorted(fetched)  # never goes back
    first_batch = task_runs_of(state)["download_images[1-3]"]
    assert first_batch.end_time
    assert seen[0][0] >= 1 and seen[0][2] < first_batch.end_time.timestamp(), seen


def test_validations_start_as_their_downloads_end_and_never_take_a_download_slot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 8 images, 2 workers on threads: 4 batches of 2 images on the flow's 2 download threads,
    # DOWNLOADS_IN_FLIGHT of them submitted at a time.
    state = snapshot_of_bulk(tmp_path, monkeypatch, images=8, latency=0.3, workers=2)
    assert state.result()["counts"]["downloaded"] == 8
    runs = task_runs_of(state).values()
    downloads = {run.name.removeprefix("download_images"): run for run in runs}
    validations = {run.name.removeprefix("validate_images"): run for run in runs}
    spans = ["[1-2]", "[3-4]", "[5-6]", "[7-8]"]
    for span in spans:
        download, validation = downloads[span], validations[span]
        assert download.end_time and validation.start_time
        # Mapped over the downloads' futures, a validation waits (Pending) for its download
        # in a lane of its own and runs once that download is over.
        assert validation.start_time >= download.end_time, span
    # The first batch is validated while the last one still downloads.
    assert validations["[1-2]"].end_time < downloads["[7-8]"].end_time
    events = sorted(
        (moment, step)
        for span in spans
        for moment, step in ((downloads[span].start_time, 1), (downloads[span].end_time, -1))
    )
    running = [sum(step for _, step in events[: index + 1]) for index in range(len(events))]
    assert max(running) == DOWNLOADS_IN_FLIGHT  # never more
