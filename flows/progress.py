"""The image half of the flow: the download task mapped over the batches and the validation
task mapped over the downloads, on the run's task runner, with progress reported while they run.

Each batch is one download task run and one validation task run, named by the images they hold
(``download_images[1-250]``). A validation gets its download's future, so Prefect starts it as
that download ends, while later batches still download. At least every ``PROGRESS_SECONDS``
the flow counts what the batches have written to the snapshot's staging folder, so the progress
artifact and log move while a batch is still downloading, whatever the runner (threads,
processes, Dask on other machines sharing the folder) and without any Prefect API call per
image.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import get_run_logger, unmapped
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.futures import PrefectFuture, wait
from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner
from prefect.utilities.annotations import opaque, quote

from gallery_snapshot.manifest import status_counts
from gallery_snapshot.models import ImageRecord, Link, StoredImage
from gallery_snapshot.pipeline import StepOptions, known_in_batch
from gallery_snapshot.terminal import PROGRESS_FIELD
from tasks.images import download_images, validate_images

PROGRESS_SECONDS = 2.0
# Runners that hand Prefect's parameter annotations (quote, opaque) to the task intact.
KEEP_ANNOTATIONS = (ThreadPoolTaskRunner, ProcessPoolTaskRunner)

Futures = list[PrefectFuture[Any]]


def unwalked(runner: TaskRunner[Any], value: Any, *, resolve: bool = False) -> Any:
    """``value`` marked so Prefect does not walk it looking for futures (~50 ms of the flow
    process's CPU for a batch of 1,000 links): ``quote``, or ``opaque`` for futures to
    ``resolve`` (their results waited for, not walked). ``map`` hands each task run its item
    with the same mark. Not on Dask, whose argument packing turns the mark (a tuple) into a
    plain tuple."""
    if not isinstance(runner, KEEP_ANNOTATIONS):
        return value
    return opaque(value) if resolve else quote(value)


def map_batches(
    runner: TaskRunner[Any],
    batches: list[list[Link]],
    options: StepOptions,
    known: dict[str, StoredImage] | None,
) -> tuple[Futures, Futures]:
    """Submit every batch's download and its validation; return both lists of futures.

    ``runner.map`` is what ``download_images.map`` calls on the flow's own runner; the run
    picks its runner (and the runner its processes) only once it has planned the batches."""
    per_batch_known = (
        unmapped(None)  # each batch looks up its own
        if known is None
        else unwalked(runner, [known_in_batch(known, links) for links in batches])
    )
    downloads = runner.map(
        download_images,  # type: ignore[arg-type]  # a sync task; map's type wants sync-or-async
        {
            "links": unwalked(runner, batches),
            "options": unmapped(options.download),
            "known": per_batch_known,
        },
    )
    validations = runner.map(
        validate_images,  # type: ignore[arg-type]
        {
            "fetched": unwalked(runner, list(downloads), resolve=True),
            "options": unmapped(options.validation),
        },
    )
    return list(downloads), list(validations)


def validated(checked: PrefectFuture[Any], fetched: PrefectFuture[Any]) -> list[ImageRecord]:
    """The records of the validation ``checked`` of the download ``fetched``. A validation
    whose download failed never runs (Prefect leaves it pending, its result an
    UnfinishedRun, or the process runner cannot resolve its input): the error is the
    download's (a full disk, too many open files)."""
    try:
        return list(checked.result())
    except Exception:
        if fetched.state.is_failed():
            fetched.result()  # raises the download's own error
        raise


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
    options: StepOptions,
    staging: Path | None,
    progress_key: str,
    records: list[ImageRecord],
    known: dict[str, StoredImage] | None = None,
) -> None:
    """Download and validate every batch, adding the records of each batch to ``records`` as
    it is validated (a run ended midway says how many it stored). ``staging`` is where
    downloads wait for validation (None: they travel in task results); ``known``, the stored
    images to reuse, when the flow decided that (else each batch looks up its own)."""
    logger = get_run_logger()
    total = sum(len(links) for links in batches)
    downloads, validations = map_batches(runner, batches, options, known)
    pending = dict(zip(validations, downloads, strict=True))
    progress: UUID = create_progress_artifact(  # type: ignore[assignment]  # sync call
        0.0, key=progress_key, description="Images downloaded and validated, %"
    )
    downloaded = 0
    while pending:
        # Our own set of what is pending: a future ``wait`` counted done is never lost.
        done = wait(list(pending), timeout=PROGRESS_SECONDS).done
        new_records: list[ImageRecord] = []
        for checked in done:
            new_records.extend(validated(checked, pending.pop(checked)))
        records.extend(new_records)
        # Staged files leave staging as their batch validates: never let the count go back.
        staged = 0 if staging is None else staged_count(staging)
        now = max(downloaded, min(total, len(records) + staged))
        if now != downloaded or new_records:
            logger.info(
                "%d/%d images fetched, %d validated (%s)",
                now,
                total,
                len(records),
                status_counts(records) or "none yet",
                extra={PROGRESS_FIELD: (now, len(records), total)},  # the command's progress bar
            )
            update_progress_artifact(progress, 50 * (now + len(records)) / max(1, total))
        downloaded = now
