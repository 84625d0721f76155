"""The image half of the flow: the download task mapped over the batches, each batch's
validation task submitted as its download ends, on the run's task runner, with progress
reported while they run.

Each batch is one download task run and one validation task run, named by the images they hold
(``download_images[1-250]``). Each download's done callback hands it to the flow as it ends;
its validation then runs while later batches still download. At least every ``PROGRESS_SECONDS``
the flow counts what the batches have written to the snapshot's staging folder, so the progress
artifact and log move while a batch is still downloading, whatever the runner (threads,
processes, Dask on other machines sharing the folder) and without any Prefect API call per
image.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import get_run_logger, unmapped
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.client.schemas.objects import TaskRunResult
from prefect.futures import PrefectFuture
from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner
from prefect.utilities.annotations import opaque, quote

from gallery_snapshot.cores import start_cores
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


class Endings:
    """The futures that have ended, as their done callbacks hand them in (from any thread).
    (Not ``as_completed`` with a timeout: in the main thread it arms SIGALRM for the whole
    generator, and the alarm then fires in whatever code the loop runs between two futures.)"""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._ended: list[PrefectFuture[Any]] = []

    def watch(self, future: PrefectFuture[Any]) -> PrefectFuture[Any]:
        future.add_done_callback(self._add)
        return future

    def _add(self, future: PrefectFuture[Any]) -> None:
        with self._lock:
            self._ended.append(future)
            self._event.set()

    def take(self, timeout: float) -> list[PrefectFuture[Any]]:
        """What ended since the last call, waiting up to ``timeout`` for something to."""
        self._event.wait(timeout)
        with self._lock:
            taken, self._ended = self._ended, []
            self._event.clear()
        return taken


def map_downloads(
    runner: TaskRunner[Any],
    batches: list[list[Link]],
    options: StepOptions,
    known: dict[str, StoredImage] | None,
) -> Futures:
    """Every batch's download, mapped over the batches.

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
    return list(downloads)


def validate_download(
    runner: TaskRunner[Any], fetched: PrefectFuture[Any], options: StepOptions
) -> PrefectFuture[Any]:
    """The validation of a download that has ended. Submitted only then, so it never waits
    for its download inside the runner: a waiting task run would hold a thread, and a cancel
    would crash it mid-wait (the run must end Cancelled, with no task run Crashed)."""
    if fetched.state.is_failed():
        fetched.result()  # raises the download's own error (a full disk, too many open files)
    checked: PrefectFuture[Any] = runner.submit(
        validate_images,
        {"fetched": unwalked(runner, fetched, resolve=True), "options": options.validation},
        dependencies={"fetched": {TaskRunResult(id=fetched.task_run_id)}},
    )
    return checked


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
    """Files the batches have downloaded (or are downloading) and not yet validated; 0 when
    they cannot be counted now (no folder yet, no file descriptor left): progress is no
    reason to fail a run, and the batches say what is wrong themselves."""
    try:
        return sum(1 for entry in os.scandir(staging) if entry.is_file())
    except OSError:
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
    start_cores(options.validation.processes)
    endings = Endings()
    downloading = {endings.watch(f) for f in map_downloads(runner, batches, options, known)}
    validating: dict[PrefectFuture[Any], PrefectFuture[Any]] = {}  # with their downloads
    progress: UUID = create_progress_artifact(  # type: ignore[assignment]  # sync call
        0.0, key=progress_key, description="Images downloaded and validated, %"
    )
    downloaded = 0
    while downloading or validating:
        new_records: list[ImageRecord] = []
        for done in endings.take(PROGRESS_SECONDS):
            if done in downloading:
                downloading.remove(done)
                validating[endings.watch(validate_download(runner, done, options))] = done
            else:
                new_records.extend(validated(done, validating.pop(done)))
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
