"""The snapshot pipeline without Prefect: its steps, in order, as plain typed functions.

    prepare -> list and select -> plan batches -> (download a batch -> validate a batch)* -> record

The flow (``flows/snapshot.py``) wraps these steps in tasks and runs the batches on a task
runner; ``run_snapshot`` runs them all in this process, on threads, for tests and benchmarks
that take many snapshots or measure the steps without Prefect's orchestration. The options of
the image steps are derived from the run's ``SnapshotConfig`` in one place, ``step_options``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gallery_snapshot.batching import DOWNLOADS_IN_FLIGHT, BatchPlan, plan_batches, split
from gallery_snapshot.changes import with_changes
from gallery_snapshot.config import SnapshotConfig
from gallery_snapshot.cores import run_on_cores, start_cores, validation_processes
from gallery_snapshot.downloader import DownloadOptions, fetch_batch
from gallery_snapshot.history import previous_manifest
from gallery_snapshot.history_page import write_history_page
from gallery_snapshot.http import Backoff
from gallery_snapshot.manifest import build_manifest, write_manifest
from gallery_snapshot.models import (
    FetchResult,
    ImageRecord,
    Link,
    Listing,
    Manifest,
    Selection,
    StoredImage,
)
from gallery_snapshot.selection import select_links
from gallery_snapshot.snapshot_page import write_snapshot_page
from gallery_snapshot.sources import list_links
from gallery_snapshot.store import SnapshotStore, open_store
from gallery_snapshot.validation import validate_fetched


@dataclass(frozen=True, kw_only=True)
class ValidationOptions:
    """How to validate a batch; plain data so it can travel to worker processes."""

    out_dir: str
    snapshot_id: str
    formats: tuple[str, ...]  # Pillow's names: "JPEG", "PNG"...
    max_pixels: int
    deadline: float  # seconds to decode one image
    processes: int = 0  # to validate on (``cores.validation_processes``); 0: in the caller


@dataclass(frozen=True, kw_only=True)
class StepOptions:
    """The options of the image steps of one snapshot."""

    download: DownloadOptions
    validation: ValidationOptions


@dataclass(frozen=True)
class PlannedBatches:
    plan: BatchPlan
    batches: list[list[Link]]  # the selected links, in order, cut into the plan's batches


@dataclass(frozen=True)
class RecordedSnapshot:
    manifest: Manifest  # as written
    location: str  # where the manifest went
    page: str  # where the snapshot's page went


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def step_options(
    config: SnapshotConfig,
    *,
    out_dir: str,
    snapshot_id: str,
    threads: int,
    backoff: Backoff | None = None,
) -> StepOptions:
    """The image steps' options from the run's config: the one place they are derived.
    ``out_dir``: the opened store's name; ``threads``: the plan's download threads per
    process; ``backoff``: between an image's attempts (tests pass a zero one)."""
    download = DownloadOptions(
        out_dir=out_dir,
        snapshot_id=snapshot_id,
        allowed_hosts=frozenset(config.allowed_hosts),
        timeout=config.timeout,
        max_bytes=config.max_bytes,
        deadline=config.deadline,
        attempts=config.attempts,
        threads=threads,
        **({} if backoff is None else {"backoff": backoff}),
    )
    validation = ValidationOptions(
        out_dir=out_dir,
        snapshot_id=snapshot_id,
        formats=config.pillow_formats,
        max_pixels=config.max_pixels,
        deadline=config.deadline,
        processes=validation_processes(in_own_process=config.runner != "threads"),
    )
    return StepOptions(download=download, validation=validation)


def prepare(out_dir: str) -> SnapshotStore:
    """The store, opened once and made ready: an older layout migrated, a missing URL index
    rebuilt; wrong credentials or a missing bucket stop the run before any write."""
    store = open_store(out_dir)
    store.ready_for_snapshot()
    return store


def list_gallery(
    config: SnapshotConfig, *, client_id: str | None, before_request: Any = None
) -> Listing:
    """The links the config's source lists (``before_request``: a shared rate limit)."""
    return list_links(
        config.source,
        client_id=client_id,
        timeout=config.timeout,
        deadline=config.deadline,
        before_request=before_request,
    )


def select_images(links: list[Link], config: SnapshotConfig) -> Selection:
    """The links the config wants: its formats, from its allowed hosts."""
    return select_links(links, mime_types=config.mime_types, allowed_hosts=config.allowed_hosts)


def plan_downloads(
    selected: Sequence[Link], config: SnapshotConfig, *, cpus: int | None = None
) -> PlannedBatches:
    """The selected links in batches, and the processes and threads that download them."""
    plan = plan_batches(
        len(selected),
        runner=config.runner,
        workers=config.workers,
        cpus=cpus or os.cpu_count() or 1,
    )
    return PlannedBatches(plan=plan, batches=split(selected, plan.sizes))


def known_images(
    store: SnapshotStore, selected: Iterable[Link], *, recheck: bool = False
) -> dict[str, StoredImage] | None:
    """The stored images of the selected URLs, looked up once for all batches where the
    index is best asked once (an object store's one LIST); None where each batch asks it;
    none at all with ``recheck`` (every image is requested again)."""
    if recheck:
        return {}
    if store.index.batch_lookups:
        return None
    return store.index.lookup(link.url for link in selected)


def known_in_batch(
    known: dict[str, StoredImage] | None, links: Iterable[Link]
) -> dict[str, StoredImage] | None:
    """The part of ``known`` a batch of ``links`` needs (None: the batch looks up its own)."""
    if known is None:
        return None
    return {link.url: known[link.url] for link in links if link.url in known}


def download_batch(
    links: list[Link], options: DownloadOptions, known: dict[str, StoredImage] | None = None
) -> list[FetchResult]:
    """Download a batch into the store's staging (a stored image is reused, not fetched)."""
    return fetch_batch(links, options, known=known)


def validate_batch(fetched: list[FetchResult], options: ValidationOptions) -> list[ImageRecord]:
    """Validate a downloaded batch: store what is valid, quarantine what is not; on the
    process's validation processes (``options.processes``), off the downloads' GIL."""
    return run_on_cores(
        options.processes,
        validate_fetched,
        fetched,
        out_dir=options.out_dir,
        snapshot_id=options.snapshot_id,
        formats=options.formats,
        max_pixels=options.max_pixels,
        deadline=options.deadline,
    )


def download_and_validate(
    batches: list[list[Link]],
    options: StepOptions,
    *,
    known: dict[str, StoredImage] | None = None,
    in_flight: int = DOWNLOADS_IN_FLIGHT,
) -> list[ImageRecord]:
    """Every batch downloaded, ``in_flight`` at a time (their images share the process's
    download threads), and validated as its download ends, in threads of its own: the flow's
    arrangement on the thread runner, without Prefect. Records in batch order."""

    def validated(fetched: Future[list[FetchResult]]) -> list[ImageRecord]:
        return validate_batch(fetched.result(), options.validation)

    start_cores(options.validation.processes)
    with (
        ThreadPoolExecutor(in_flight, thread_name_prefix="batch-download") as downloads,
        ThreadPoolExecutor(in_flight, thread_name_prefix="batch-validate") as checks,
    ):
        fetches = [
            downloads.submit(download_batch, links, options.download, known_in_batch(known, links))
            for links in batches
        ]
        checked = [checks.submit(validated, fetched) for fetched in fetches]
        return [record for future in checked for record in future.result()]


def record_snapshot(
    out_dir: str,
    *,
    snapshot_id: str,
    started_at: str,
    finished_at: str,
    source: dict[str, Any],
    link_count: int,
    records: list[ImageRecord],
    skipped: list[Any],
) -> RecordedSnapshot:
    """Write the snapshot's page, then its manifest (last, so a manifest never names what is
    not there yet), with its changes since the previous snapshot of its source; then the
    store's page of every snapshot."""
    manifest = build_manifest(
        snapshot_id=snapshot_id,
        started_at=started_at,
        finished_at=finished_at,
        source=source,
        link_count=link_count,
        records=records,
        skipped=skipped,
    )
    previous = previous_manifest(out_dir, manifest)
    manifest = with_changes(manifest, previous)
    page = write_snapshot_page(out_dir, manifest, previous)
    location = write_manifest(out_dir, manifest)
    write_history_page(out_dir, manifest.header)
    return RecordedSnapshot(manifest=manifest, location=location, page=page)


def run_snapshot(
    config: SnapshotConfig,
    *,
    snapshot_id: str,
    client_id: str | None = None,
    backoff: Backoff | None = None,
) -> RecordedSnapshot:
    """One whole snapshot, every step in order, in this process and without Prefect."""
    started_at = utc_now()
    store = prepare(config.out_dir)
    with store.snapshot_lock(snapshot_id):
        store.sweep_stale_staging()
        listing = list_gallery(config, client_id=client_id)
        selection = select_images(listing.links, config)
        planned = plan_downloads(selection.selected, config)
        options = step_options(
            config,
            out_dir=store.name,
            snapshot_id=snapshot_id,
            threads=planned.plan.threads,
            backoff=backoff,
        )
        records = download_and_validate(
            planned.batches,
            options,
            known=known_images(store, selection.selected, recheck=config.recheck),
        )
        return record_snapshot(
            store.name,
            snapshot_id=snapshot_id,
            started_at=started_at,
            finished_at=utc_now(),
            source=config.source.model_dump(),
            link_count=len(listing.links),
            records=store.settle(snapshot_id, records),
            skipped=listing.skipped + selection.skipped,
        )
