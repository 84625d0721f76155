"""The task runner for the download step, chosen by the snapshot's configuration."""

from __future__ import annotations

import logging
import os
from typing import Any

from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner

from gallery_snapshot.batching import BatchPlan
from gallery_snapshot.config import SnapshotConfig


def build_task_runner(config: SnapshotConfig, plan: BatchPlan) -> TaskRunner[Any]:
    """Threads (default), processes, or Dask, with ``plan.slots`` concurrent task runs."""
    if config.runner == "processes":
        return ProcessPoolTaskRunner(max_workers=plan.slots)
    if config.runner == "dask":
        quiet_dask()
        from prefect_dask.task_runners import DaskTaskRunner

        if config.dask_address:
            return DaskTaskRunner(address=config.dask_address)
        return DaskTaskRunner(
            cluster_kwargs={"n_workers": plan.slots, "threads_per_worker": 1, "processes": True}
        )
    # A validation task waits for its download in a runner thread: twice the slots keeps
    # ``plan.slots`` downloads running while validations wait (process and Dask runners
    # resolve dependencies before a task takes a worker).
    return ThreadPoolTaskRunner(max_workers=2 * plan.slots)


def quiet_dask() -> None:
    """Dask's ``distributed.*`` INFO lines (scheduler and worker start-up, every connection)
    off unless asked for: here, and in the local cluster's worker processes, which read the
    environment. ``DASK_LOGGING__DISTRIBUTED=info`` brings them back."""
    level = os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    logging.getLogger("distributed").setLevel(level.upper())
