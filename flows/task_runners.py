"""The task runner for the download step, chosen by the snapshot's configuration."""

from __future__ import annotations

import logging
import os
from typing import Any

from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner

from gallery_snapshot.batching import BatchPlan
from gallery_snapshot.config import SnapshotConfig

# Download task runs in flight on the thread runner. They share the process's download
# threads, so this many batches keep those threads fed across each batch's end.
DOWNLOADS_IN_FLIGHT = 3


class BatchThreadPoolTaskRunner(ThreadPoolTaskRunner[Any]):
    """Threads for the download step: ``slots`` download task runs at a time (the flow keeps
    no more in flight) and as many threads again for their validations, which the flow submits
    as each download completes, so a validation never waits for its download in a thread a
    download could use. (The downloads themselves run on the process's download threads.)"""

    def __init__(self, *, slots: int) -> None:
        super().__init__(max_workers=2 * slots)
        self.slots = slots

    def duplicate(self) -> BatchThreadPoolTaskRunner:
        return type(self)(slots=self.slots)


def build_task_runner(config: SnapshotConfig, plan: BatchPlan) -> TaskRunner[Any]:
    """Threads (default), processes, or Dask, with ``plan.processes`` worker processes."""
    if config.runner == "processes":
        return ProcessPoolTaskRunner(max_workers=plan.processes)
    if config.runner == "dask":
        quiet_dask()
        from prefect_dask.task_runners import DaskTaskRunner

        if config.dask_address:
            return DaskTaskRunner(address=config.dask_address)
        return DaskTaskRunner(
            cluster_kwargs={"n_workers": plan.processes, "threads_per_worker": 1, "processes": True}
        )
    return BatchThreadPoolTaskRunner(slots=DOWNLOADS_IN_FLIGHT)


def download_slots(runner: TaskRunner[Any]) -> int | None:
    """How many download task runs to keep in flight on ``runner``: the thread runner's slots;
    None (all at once) for process and Dask runners, whose queues hold what their workers
    cannot run yet."""
    return runner.slots if isinstance(runner, BatchThreadPoolTaskRunner) else None


def quiet_dask() -> None:
    """Dask's ``distributed.*`` INFO lines (scheduler and worker start-up, every connection)
    off unless asked for: here, and in the local cluster's worker processes, which read the
    environment. ``DASK_LOGGING__DISTRIBUTED=info`` brings them back."""
    level = os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    logging.getLogger("distributed").setLevel(level.upper())
