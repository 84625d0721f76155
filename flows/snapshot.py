"""The gallery-snapshot flow: fetch links, filter, download in batches, validate, record.

(Not named gallery_snapshot.py: Prefect loads an entrypoint script under its file name, which
would shadow the ``gallery_snapshot`` package.)"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
from prefect import State, flow, get_client, get_run_logger
from prefect.exceptions import TerminationSignal
from prefect.runtime import deployment, flow_run
from prefect.states import Failed
from prefect.utilities.annotations import quote

from flows.console import tolerate_lost_output
from flows.events import emit_completed, emit_failed
from flows.leftovers import end_leftover_task_runs
from flows.progress import download_all
from flows.run_identity import current_snapshot_id, name_if_unnamed, run_namer, tag_current_run
from flows.task_runners import build_task_runner
from gallery_snapshot.config import SnapshotConfig
from gallery_snapshot.demo_gallery import DemoGallery
from gallery_snapshot.errors import SnapshotError
from gallery_snapshot.http import abort_exchanges
from gallery_snapshot.models import ImageRecord, Selection
from gallery_snapshot.naming import artifact_prefix, snapshot_label, source_slug, source_tag
from gallery_snapshot.pipeline import (
    RecordedSnapshot,
    known_images,
    plan_downloads,
    prepare,
    step_options,
    utc_now,
)
from gallery_snapshot.run_policy import RunPolicy, checked_config
from gallery_snapshot.store import SnapshotStore
from tasks.cache import forget_results
from tasks.links import fetch_links, filter_links
from tasks.manifest import record_manifest
from tasks.report import artifact_key, publish_report

# Prefect's lines that repeat a failure the run's final state tells: a task run's
# 'Finished in state Failed("Task run encountered an exception ConfigError: …")', and, in a
# process a worker started, the engine's line after the final state.
TASK_RUN_FAILED = re.compile(r"^Finished in state Failed\(.Task run encountered an exception (\w+)")
ENGINE_EXITED = "Engine execution exited with unexpected exception"


def snapshot_error_names(kind: type[SnapshotError] = SnapshotError) -> set[str]:
    return {kind.__name__}.union(*(snapshot_error_names(sub) for sub in kind.__subclasses__()))


class OneLineForSnapshotErrors(logging.Filter):
    """A SnapshotError's message is the whole story (no client id, a rejected one, spent
    credits), told once: by the run's final state, "Finished in state Failed('…')". Prefect's
    lines that repeat it go, and a traceback (in the terminal and in the run's logs on the
    server) would only bury it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], SnapshotError):
            if record.msg == ENGINE_EXITED:
                return False
            record.exc_info = None
            record.exc_text = None
        failed = TASK_RUN_FAILED.match(str(record.msg))
        return not (failed and failed.group(1) in snapshot_error_names())


# At import: in the CLI's process and in every process a worker starts to run a deployment.
for _logger in ("prefect.flow_runs", "prefect.task_runs"):
    logging.getLogger(_logger).addFilter(OneLineForSnapshotErrors())
tolerate_lost_output()


@contextlib.contextmanager
def demo_gallery_if_asked(config: SnapshotConfig) -> Iterator[SnapshotConfig]:
    """With ``demo_gallery``, serve the demo gallery for the run and point the config at it."""
    if not config.demo_gallery:
        yield config
        return
    with DemoGallery(port=None) as gallery:
        source = config.source.model_copy(update={"api_url": gallery.api_url})
        yield config.model_copy(update={"source": source, "allowed_hosts": [gallery.image_host]})


@contextlib.contextmanager
def downloads_cut_on_termination() -> Iterator[None]:
    """Prefect cancels a worker's run with SIGTERM, which its handler turns into
    TerminationSignal in the main thread (its handler must stay: it is how the run ends
    Cancelled rather than Crashed); the task runner's shutdown would then wait for stuck
    downloads (up to ``--deadline``). Cut them first. (The CLI runs the flow in a thread and
    ends its process on a signal itself.)"""
    try:
        yield
    except TerminationSignal:
        abort_exchanges()
        raise


def ended_how() -> str:
    """How a run ended by SIGTERM ended: "cancelled" when it was (its state is Cancelling),
    else "terminated" (a node shut down, a pod evicted), or "ended" when the API cannot say."""
    try:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(UUID(flow_run.id)).state
    except httpx.HTTPError:
        return "ended"
    return "cancelled" if state is not None and state.is_cancelling() else "terminated"


@contextlib.contextmanager
def kept_is_told_on_termination(
    store: SnapshotStore, snapshot_id: str, records: list[ImageRecord]
) -> Iterator[None]:
    """A run ended by a signal says, last, what the next run starts from."""
    try:
        yield
    except TerminationSignal:
        get_run_logger().info(
            "%s; %d images stored, %d staged downloads kept for the next run",
            ended_how(),
            sum(record.status == "downloaded" for record in records),
            store.kept_downloads(snapshot_id),
        )
        raise


snapshot_run_name = run_namer(snapshot_label)


@flow(
    name="gallery-snapshot",
    flow_run_name=snapshot_run_name,
    on_failure=[name_if_unnamed(snapshot_label)],
    on_crashed=[name_if_unnamed(snapshot_label)],
)
def gallery_snapshot(config: SnapshotConfig = SnapshotConfig()) -> dict[str, Any]:  # noqa: B008
    """Take one snapshot of a gallery into ``config.out_dir`` and record it in a manifest."""
    try:
        return take_snapshot(config)
    except SnapshotError as exc:
        emit_failed(config, str(exc))
        # Its message as the run's final state: the one line that says why (no traceback).
        return Failed(message=str(exc), data=exc)  # type: ignore[return-value]
    except Exception as exc:
        emit_failed(config, f"{type(exc).__name__}: {exc}")
        raise


@dataclass(frozen=True)
class RunStart:
    """What a snapshot run knows before it reads anything."""

    config: SnapshotConfig  # as this machine lets it run
    snapshot_id: str
    started_at: str
    clock: float  # time.monotonic() at the start
    key_prefix: str  # of the run's artifacts: per deployment and source


def start_run(config: SnapshotConfig) -> RunStart:
    end_leftover_task_runs(flow_run.flow_name)
    # Our modules' INFO lines (API credits) in the run's logs; Prefect's root logger is at WARNING.
    ours = logging.getLogger("gallery_snapshot")
    if ours.getEffectiveLevel() > logging.INFO:  # `gallery-snapshot run -v` has it at DEBUG
        ours.setLevel(logging.INFO)
    source, tag = source_slug(config), source_tag(config)  # as given, as in the run's name
    # Before anything is read, written or sent: what this machine lets the parameters reach.
    config = checked_config(config, RunPolicy.of_this_process())
    tag_current_run(tag)
    start = RunStart(
        config=config,
        snapshot_id=current_snapshot_id(),
        started_at=utc_now(),
        clock=time.monotonic(),
        # Per deployment and source: a custom run of another source keeps out of its history.
        key_prefix=artifact_prefix([deployment.name, source]),
    )
    get_run_logger().info(
        "snapshot %s of %s into %s", start.snapshot_id, source, start.config.out_dir
    )
    return start


def take_snapshot(config: SnapshotConfig) -> dict[str, Any]:
    logger = get_run_logger()
    run = start_run(config)
    store = prepare(run.config.out_dir)
    records: list[ImageRecord] = []  # as batches validate
    with (
        kept_is_told_on_termination(store, run.snapshot_id, records),
        demo_gallery_if_asked(run.config) as config,
        store.snapshot_lock(run.snapshot_id),
    ):
        if swept := store.sweep_stale_staging():
            logger.info("removed staging files of %d interrupted run(s)", len(swept))
        listing = fetch_links(
            config.source, config.timeout, config.demo_gallery, deadline=config.deadline
        )
        # quote: Prefect would walk every link looking for futures (2.7 s at 100,000)
        selection: Selection = filter_links(quote(listing.links), config)  # type: ignore[call-overload]
        logger.info(
            "%d links found, %d selected, %d skipped",
            len(listing.links),
            len(selection.selected),
            len(selection.skipped) + len(listing.skipped),
        )
        planned = plan_downloads(selection.selected, config)
        with build_task_runner(config, planned.plan) as runner, downloads_cut_on_termination():
            download_all(
                runner,
                planned.batches,
                options=step_options(
                    config,
                    out_dir=store.name,
                    snapshot_id=run.snapshot_id,
                    threads=planned.plan.threads,
                ),
                staging=store.staging_dir(run.snapshot_id),
                known=known_images(store, selection.selected, recheck=config.recheck),
                progress_key=artifact_key(run.key_prefix, "progress"),
                records=records,
            )
        recorded: RecordedSnapshot = record_manifest(  # type: ignore[call-overload]  # quote() arrives unwrapped
            out_dir=store.name,
            snapshot_id=run.snapshot_id,
            started_at=run.started_at,
            finished_at=utc_now(),
            source=config.source.model_dump(),
            link_count=len(listing.links),
            # quote: Prefect would walk every record looking for futures (4-6 s at 100,000).
            records=quote(store.settle(run.snapshot_id, records)),
            skipped=quote(listing.skipped + selection.skipped),
        )
    forget_results(flow_run.id)  # recorded: a retry of this run has nothing left to reuse
    emit_completed(config, recorded.manifest, recorded.location)
    return reported(run, store.name, recorded)


def reported(run: RunStart, out_dir: str, recorded: RecordedSnapshot) -> dict[str, Any]:
    """Publish the recorded snapshot's report; return what the flow run returns."""
    logger = get_run_logger()
    manifest = recorded.manifest
    report: State[Any] = publish_report(
        out_dir=out_dir,
        # quote: the manifest as written, not walked for futures nor read back (tens of MB)
        manifest=quote(manifest),
        seconds=time.monotonic() - run.clock,
        key_prefix=run.key_prefix,
        return_state=True,
    )
    if not report.is_completed():  # the snapshot is whole: its report is not what it is for
        logger.warning(
            "the snapshot's report could not be published (%s); the snapshot is recorded in %s",
            report.message,
            recorded.location,
        )
    logger.info("snapshot %s recorded in %s", run.snapshot_id, recorded.location)
    return {
        "snapshot_id": run.snapshot_id,
        "manifest": recorded.location,
        "page": recorded.page,
        "counts": manifest.counts.model_dump(),
    }
