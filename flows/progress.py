"""The image half of the flow: download and validate batches on the task runner, and report
progress while they run.

Each batch is one download task run and one validation task run, named by the images they hold
(``download_images[1-250]``). The flow submits a batch's validation as soon as its download is
done, so validation overlaps the downloads still running. At least every ``PROGRESS_SECONDS``
it counts what the batches have written to the snapshot's staging folder, so the progress
artifact and log move while a batch is still downloading, whatever the runner (threads,
processes, Dask on other machines sharing the folder) and without any Prefect API call per
image.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.client.schemas.objects import TaskRunResult
from prefect.exceptions import UnfinishedRun
from prefect.futures import PrefectFuture
from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner
from prefect.utilities.annotations import opaque, quote

from flows.task_runners import download_slots
from gallery_snapshot.downloader import DownloadOptions
from gallery_snapshot.manifest import status_counts
from gallery_snapshot.models import ImageRecord, Link, StoredImage
from gallery_snapshot.terminal import PROGRESS_FIELD
from tasks.images import download_images, validate_images

PROGRESS_SECONDS = 2.0
# Runners that hand Prefect's parameter annotations (quote, opaque) to the task intact.
KEEP_ANNOTATIONS = (ThreadPoolTaskRunner, ProcessPoolTaskRunner)


def span(start: int, size: int) -> str:
    """``[1-250]``: the batch's images, numbered from 1 in the selection."""
    return f"[{start + 1}-{start + size}]"


class Finished:
    """The futures that have finished, as their done callbacks hand them in (from any thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._futures: list[PrefectFuture[Any]] = []

    def watch(self, future: PrefectFuture[Any]) -> PrefectFuture[Any]:
        future.add_done_callback(self._add)
        return future

    def _add(self, future: PrefectFuture[Any]) -> None:
        with self._lock:
            self._futures.append(future)
            self._event.set()

    def take(self, timeout: float) -> list[PrefectFuture[Any]]:
        """What finished since the last call, waiting up to ``timeout`` for something to."""
        self._event.wait(timeout)
        with self._lock:
            taken, self._futures = self._futures, []
            self._event.clear()
        return taken


class BatchSubmitter:
    """Submits each batch's download, and its validation once the download is done, so a
    validation never waits for its download in a runner worker (on the thread runner it would
    hold a worker a download could use). ``slots`` downloads in flight at most (None: all)."""

    def __init__(
        self,
        runner: TaskRunner[Any],
        batches: list[list[Link]],
        *,
        options: DownloadOptions,
        validation: dict[str, Any],
        known: dict[str, StoredImage] | None,
        slots: int | None,
    ) -> None:
        self.runner, self.options, self.validation, self.known = runner, options, validation, known
        self.finished = Finished()
        self.downloads: dict[PrefectFuture[Any], str] = {}  # in flight, with their span
        # In flight, with the download each validates.
        self.validations: dict[PrefectFuture[Any], PrefectFuture[Any]] = {}
        self._waiting = collections.deque[tuple[str, list[Link]]]()
        start = 0
        for links in batches:
            self._waiting.append((span(start, len(links)), links))
            start += len(links)
        for _ in range(len(batches) if slots is None else min(slots, len(batches))):
            self._download_next()

    @property
    def busy(self) -> bool:
        return bool(self.downloads or self.validations)

    def _unwalked(self, value: Any, *, resolve: bool = False) -> Any:
        """``value`` marked so Prefect does not walk it looking for futures (~50 ms of the
        flow process's CPU for a batch of 1,000 links): ``quote``, or ``opaque`` for a future
        to ``resolve`` (its result waited for, not walked). Not on Dask, whose argument
        packing turns the mark (a tuple) into a plain tuple."""
        if not isinstance(self.runner, KEEP_ANNOTATIONS):
            return value
        return opaque(value) if resolve else quote(value)

    def _download_next(self) -> None:
        name, links = self._waiting.popleft()
        parameters: dict[str, Any] = {"links": self._unwalked(links), "options": self.options}
        if self.known is not None:  # reuse decided by the flow (an object store's one LIST)
            known = self.known
            parameters["known"] = self._unwalked(
                {link.url: known[link.url] for link in links if link.url in known}
            )
        fetched = self.runner.submit(
            download_images.with_options(task_run_name=f"download_images{name}"),
            parameters=parameters,
        )
        self.downloads[self.finished.watch(fetched)] = name

    def _validate(self, fetched: PrefectFuture[Any], name: str) -> None:
        checked = self.runner.submit(
            validate_images.with_options(task_run_name=f"validate_images{name}"),
            parameters={"fetched": self._unwalked(fetched, resolve=True), **self.validation},
            dependencies={"fetched": {TaskRunResult(id=fetched.task_run_id)}},
        )
        self.validations[self.finished.watch(checked)] = fetched

    def step(self, timeout: float) -> list[ImageRecord]:
        """Wait up to ``timeout`` for task runs to finish; submit what their ends allow; return
        the records of the batches validated meanwhile."""
        records: list[ImageRecord] = []
        for future in self.finished.take(timeout):
            if future in self.validations:
                records.extend(validated(future, self.validations.pop(future)))
                continue
            name = self.downloads.pop(future)
            if future.state.is_failed():
                future.result()  # raises the download's own error (a full disk, say)
            if self._waiting:  # first: the download threads must not run dry
                self._download_next()
            self._validate(future, name)
        return records


def validated(checked: PrefectFuture[Any], fetched: PrefectFuture[Any]) -> list[ImageRecord]:
    """The records of the validation ``checked`` of the download ``fetched``. A validation
    whose download failed never runs (Prefect leaves it pending, and its result is an
    UnfinishedRun): the error is the download's (a full disk, too many open files). (The
    server may learn of a download's failure only after the flow has submitted its
    validation.)"""
    try:
        return list(checked.result())
    except UnfinishedRun:
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
    options: DownloadOptions,
    validation: dict[str, Any],
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
    submitter = BatchSubmitter(
        runner,
        batches,
        options=options,
        validation=validation,
        known=known,
        slots=download_slots(runner),
    )
    progress: UUID = create_progress_artifact(  # type: ignore[assignment]  # sync call
        0.0, key=progress_key, description="Images downloaded and validated, %"
    )
    downloaded = 0
    next_report = time.monotonic() + PROGRESS_SECONDS
    while submitter.busy:
        validated = submitter.step(max(0.0, next_report - time.monotonic()))
        records.extend(validated)
        if not validated and time.monotonic() < next_report and submitter.busy:
            continue  # a download ended: its validation is submitted, nothing to report yet
        next_report = time.monotonic() + PROGRESS_SECONDS
        # Staged files leave staging as their batch validates: never let the count go back.
        staged = 0 if staging is None else staged_count(staging)
        now = max(downloaded, min(total, len(records) + staged))
        if now != downloaded or validated:
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
