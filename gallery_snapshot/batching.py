"""How the download step spreads its work.

One Prefect task run per image costs ~5-8 ms of client CPU and ~38 ms of server CPU, so task
runs carry batches, and ``workers`` (the total number of concurrent downloads) is split into
concurrent task runs ("slots") times threads inside each batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from gallery_snapshot.config import Runner

T = TypeVar("T")

# Concurrent task runs on the thread runner. Each task run costs the Prefect server ~38 ms of
# CPU (measured: 128 task runs for 2,000 images left it 11 s of CPU on our 2 cores), so the
# concurrency lives in threads inside each batch, not in more task runs.
MAX_THREAD_SLOTS = 4
# Batches per slot: two lets validation of one batch overlap the download of the next, and
# keeps orchestration O(batches), not O(images).
BATCHES_PER_SLOT = 2


@dataclass(frozen=True)
class BatchPlan:
    slots: int  # concurrent task runs (task runner workers)
    threads: int  # download threads inside one task run
    batch_count: int

    @property
    def concurrency(self) -> int:
        return self.slots * self.threads


def plan_batches(n_links: int, *, runner: Runner, workers: int, cpus: int) -> BatchPlan:
    """Split ``workers`` concurrent downloads into task-run slots and threads per batch.

    Threads: up to ``MAX_THREAD_SLOTS`` task runs. Processes and Dask: one slot per core
    (a process per concurrent download would cost ~150 MB each), threads inside.
    """
    cap = MAX_THREAD_SLOTS if runner == "threads" else max(1, cpus)
    threads = math.ceil(workers / cap)
    slots = math.ceil(workers / threads)
    batch_count = max(1, min(slots * BATCHES_PER_SLOT, math.ceil(n_links / threads)))
    return BatchPlan(slots=slots, threads=threads, batch_count=batch_count)


def split(items: Sequence[T], count: int) -> list[list[T]]:
    """``items`` in ``count`` contiguous batches whose sizes differ by at most one (no empty
    batch unless ``items`` is empty)."""
    count = max(1, min(count, len(items)))
    size, extra = divmod(len(items), count)
    batches: list[list[T]] = []
    start = 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        batches.append(list(items[start:end]))
        start = end
    return batches
