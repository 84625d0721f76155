"""The task runner for the download step, chosen by the snapshot's configuration."""

from __future__ import annotations

import logging
import os
from typing import Any

from prefect.futures import PrefectFuture
from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner

from gallery_snapshot.batching import DOWNLOADS_IN_FLIGHT, BatchPlan
from gallery_snapshot.config import SnapshotConfig
from tasks.images import validate_images

__all__ = ["DOWNLOADS_IN_FLIGHT", "BatchThreadPoolTaskRunner", "build_task_runner"]


class BatchThreadPoolTaskRunner(ThreadPoolTaskRunner[Any]):
    """Threads for the download step, in two lanes of ``slots`` threads each: download task
    runs in one, validation task runs in the other. The flow maps every batch's download at
    once and the lane runs them in order, ``slots`` in flight; a batch's validation, submitted
    as its download ends, never queues behind the downloads still to run. (The downloads
    themselves run on the process's download threads, which the batches in flight share.)"""

    def __init__(self, *, slots: int) -> None:
        super().__init__(max_workers=slots)
        self.slots = slots
        self.validations = ThreadPoolTaskRunner[Any](max_workers=slots)

    def duplicate(self) -> BatchThreadPoolTaskRunner:
        return type(self)(slots=self.slots)

    def submit(  # type: ignore[override]
        self,
        task: Any,
        parameters: dict[str, Any],
        wait_for: Any = None,
        dependencies: Any = None,
    ) -> PrefectFuture[Any]:
        if task.name == validate_images.name:
            return self.validations.submit(task, parameters, wait_for, dependencies)
        return super().submit(task, parameters, wait_for, dependencies)

    def cancel_all(self) -> None:
        self.validations.cancel_all()
        super().cancel_all()

    def __enter__(self) -> BatchThreadPoolTaskRunner:
        super().__enter__()
        self.validations.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        try:
            self.validations.__exit__(*exc_info)
        finally:
            super().__exit__(*exc_info)


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


def quiet_dask() -> None:
    """Dask's ``distributed.*`` INFO lines (scheduler and worker start-up, every connection)
    off unless asked for: here, and in the local cluster's worker processes, which read the
    environment. ``DASK_LOGGING__DISTRIBUTED=info`` brings them back."""
    level = os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    logging.getLogger("distributed").setLevel(level.upper())
