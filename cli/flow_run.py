"""Running the snapshot flow in this process: its run's handle (what an interrupt cancels),
what the terminal shows of it (log lines, a progress bar) and the summary printed after."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Iterator

from gallery_snapshot.config import SnapshotConfig
from gallery_snapshot.errors import SnapshotError
from gallery_snapshot.http import abort_exchanges
from gallery_snapshot.manifest import summary_table
from gallery_snapshot.models import Counts, SnapshotSummary
from gallery_snapshot.store import layout, manifest_relpath, open_store, page_relpath
from gallery_snapshot.terminal import ProgressBar, ProgressHandler


class FlowRunHandle:
    """The CLI's flow run once it runs: what an interrupt marks Cancelled on the server."""

    def __init__(self) -> None:
        self.flow_run_id: str | None = None

    def run_name(self) -> str:
        """The flow's own run name; on the way, the run's id."""
        from flows.run_identity import current_run
        from flows.snapshot import snapshot_run_name

        self.flow_run_id = str(current_run().id)
        return snapshot_run_name()

    def cancel(self) -> None:
        if self.flow_run_id is None:
            return
        from prefect.client.orchestration import get_client
        from prefect.states import Cancelled

        with get_client(sync_client=True) as client:
            client.set_flow_run_state(
                self.flow_run_id, Cancelled(message="interrupted from the command line"), force=True
            )


def run_snapshot(config: SnapshotConfig, handle: FlowRunHandle) -> tuple[SnapshotSummary, str]:
    """Run the flow in this process; return its summary (snapshot id, counts, where the
    manifest and page are: the manifest itself is not read again, it can be tens of MB) and
    the flow run's id, or raise SnapshotError."""
    from prefect import tags

    from flows.snapshot import gallery_snapshot
    from gallery_snapshot.naming import source_tag

    flow = (
        gallery_snapshot.with_options(flow_run_name=handle.run_name) if handle else gallery_snapshot
    )
    with tags(source_tag(config)):  # created with it: deployment runs get it as they start
        state = flow(config, return_state=True)
    outcome = state.result(raise_on_failure=False)
    if isinstance(outcome, SnapshotError):
        raise outcome
    if isinstance(outcome, BaseException) or not state.is_completed():
        raise SnapshotError(f"the snapshot flow ended in state {state.type.value}: {state.message}")
    return SnapshotSummary.model_validate(outcome), str(state.state_details.flow_run_id)


def print_summary(summary: SnapshotSummary, out_dir: str, seconds: float) -> None:
    print(f"snapshot {summary.snapshot_id} finished in {seconds:.1f} s")
    print(summary_table(summary.counts))
    store, snapshot_id = open_store(out_dir), summary.snapshot_id
    print(f"manifest: {store.location(manifest_relpath(snapshot_id))}")
    hint = " (open it in a browser)" if store.browsable else ""
    print(f"page:     {store.location(page_relpath(snapshot_id))}{hint}")
    print(f"images:   {store.location(layout.IMAGES)}")
    if summary.counts.invalid:
        print(f"invalid files quarantined under {store.location(layout.QUARANTINE)}")


def console_level(args: argparse.Namespace) -> str | None:
    """The least level of a log line shown on the terminal (None: Prefect's own choice). The
    run's logs on the server are the same whatever is shown here."""
    if args.quiet:
        return "CRITICAL"  # our own one-line error is all that is printed
    if not args.verbose and sys.stderr is not None and sys.stderr.isatty():
        return "WARNING"  # a progress bar stands in for the progress lines
    return None


def verbose(args: argparse.Namespace) -> None:
    """Every log line with -v: set before Prefect is imported (it reads its settings once)."""
    if args.verbose:
        os.environ["PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL"] = "INFO"
        logging.getLogger("gallery_snapshot").setLevel(logging.DEBUG)


def show_on_console(level: str | None) -> None:
    """Prefect's console handler at ``level``, in this process and the worker processes it
    starts (not in a local Prefect server it started: its log keeps every line)."""
    if level is None:
        return
    from prefect.logging.configuration import ensure_logging_setup
    from prefect.logging.handlers import PrefectConsoleHandler

    os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = level
    ensure_logging_setup()
    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler):
            handler.setLevel(level)


@contextlib.contextmanager
def progress_shown(bar: ProgressBar | None) -> Iterator[None]:
    """The flow's progress records drawn on ``bar`` while the run goes; its line cleared at
    the end, for the summary or an error."""
    if bar is None:
        yield
        return
    from prefect.logging.configuration import ensure_logging_setup

    ensure_logging_setup()  # first: setting up Prefect's logging replaces its loggers' handlers
    handler = ProgressHandler(bar)
    logger = logging.getLogger("prefect.flow_runs")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        bar.close()


def problem_share(counts: Counts) -> float:
    """Failed and invalid images, in % of those selected."""
    return 100 * (counts.failed + counts.invalid) / max(1, counts.selected)


def end_the_run() -> None:
    """Before the line saying why a run failed, which must be the last: the run is over and
    recorded, but threads of its other batches may still end and log. Their downloads are
    cut, and what they would log is dropped."""
    abort_exchanges()
    logging.disable(logging.CRITICAL)
