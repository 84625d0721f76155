"""The image half of the flow: download and validate batches on the task runner, and report
progress while they run.

Each batch is one download task run and one validation task run, named by the images they hold
(``download_images[1-250]``). The flow polls the futures every ``PROGRESS_SECONDS`` and counts
what the batches have written to the snapshot's staging folder, so the progress artifact and log
move while a batch is still downloading, whatever the runner (threads, processes, Dask on other
machines sharing the folder) and without any Prefect API call per image.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.client.schemas.objects import TaskRunResult
from prefect.futures import PrefectFuture, wait
from prefect.task_runners import TaskRunner

from gallery_snapshot.downloader import DownloadOptions
from gallery_snapshot.manifest import status_counts
from gallery_snapshot.models import ImageRecord, Link, StoredImage
from tasks.images import download_images, validate_images

PROGRESS_SECONDS = 2.0

Batch = tuple[PrefectFuture[Any], PrefectFuture[Any]]  # download, validation


def span(start: int, size: int) -> str:
    """``[1-250]``: the batch's images, numbered from 1 in the selection."""
    return f"[{start + 1}-{start + size}]"


def submit_batches(
    runner: TaskRunner[Any],
    batches: list[list[Link]],
    *,
    options: DownloadOptions,
    validation: dict[str, Any],
    known: dict[str, StoredImage] | None = None,
) -> list[Batch]:
    submitted: list[Batch] = []
    start = 0
    for links in batches:
        name = span(start, len(links))
        start += len(links)
        parameters: dict[str, Any] = {"links": links, "options": options}
        if known is not None:  # reuse decided by the flow (an object store's one LIST)
            parameters["known"] = {link.url: known[link.url] for link in links if link.url in known}
        fetched = runner.submit(
            download_images.with_options(task_run_name=f"download_images{name}"),
            parameters=parameters,
        )
        checked = runner.submit(
            validate_images.with_options(task_run_name=f"validate_images{name}"),
            parameters={"fetched": fetched, **validation},
            dependencies={"fetched": {TaskRunResult(id=fetched.task_run_id)}},
        )
        submitted.append((fetched, checked))
    return submitted


def staged_count(staging: Path) -> int:
    """Files the batches have downloaded (or are downloading) and not yet validated."""
    try:
        return sum(1 for entry in os.scandir(staging) if entry.is_file())
    except FileNotFoundError:
        return 0


def download_all(
    runner: TaskRunner[Any],
    batches: list[list[Link]],
    *,
    options: DownloadOptions,
    validation: dict[str, Any],
    staging: Path | None,
    progress_key: str,
    known: dict[str, StoredImage] | None = None,
) -> list[ImageRecord]:
    """Download and validate every batch; return the records of all images. ``staging`` is
    where downloads wait for validation (None: they travel in task results); ``known``, the
    stored images to reuse, when the flow decided that (else each batch looks up its own)."""
    logger = get_run_logger()
    total = sum(len(links) for links in batches)
    pending = submit_batches(runner, batches, options=options, validation=validation, known=known)
    progress: UUID = create_progress_artifact(  # type: ignore[assignment]  # sync call
        0.0, key=progress_key, description="Images downloaded and validated, %"
    )
    records: list[ImageRecord] = []
    downloaded = 0
    while pending:
        done = wait([future for batch in pending for future in batch], PROGRESS_SECONDS).done
        waiting: list[Batch] = []
        for fetched, checked in pending:
            if fetched in done and fetched.state.is_failed():
                fetched.result()  # raises the download's own error (a full disk, say)
            if checked in done:
                records.extend(checked.result())
            else:
                waiting.append((fetched, checked))
        # Staged files leave staging as their batch validates: never let the count go back.
        staged = 0 if staging is None else staged_count(staging)
        now = max(downloaded, min(total, len(records) + staged))
        if now != downloaded or len(waiting) != len(pending):
            logger.info(
                "%d/%d images fetched, %d validated (%s)",
                now,
                total,
                len(records),
                status_counts(records) or "none yet",
            )
            update_progress_artifact(progress, 50 * (now + len(records)) / max(1, total))
        downloaded, pending = now, waiting
    return records
