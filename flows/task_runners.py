"""The task runner for the download step, chosen by the snapshot's configuration."""

from __future__ import annotations

from typing import Any

from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner

from gallery_snapshot.batching import BatchPlan
from gallery_snapshot.config import SnapshotConfig


def build_task_runner(config: SnapshotConfig, plan: BatchPlan) -> TaskRunner[Any]:
    """Threads (default), processes, or Dask, with ``plan.slots`` concurrent task runs."""
    if config.runner == "processes":
        return ProcessPoolTaskRunner(max_workers=plan.slots)
    if config.runner == "dask":
        from prefect_dask.task_runners import DaskTaskRunner

        if config.dask_address:
            return DaskTaskRunner(address=config.dask_address)
        return DaskTaskRunner(
            cluster_kwargs={"n_workers": plan.slots, "threads_per_worker": 1, "processes": True}
        )
    return ThreadPoolTaskRunner(max_workers=plan.slots)
