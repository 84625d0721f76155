"""How the download step spreads its work.

A Prefect task run costs more client and server CPU than downloading an image (the README's
benchmark section has the figures), so task runs carry batches, and ``workers`` (the total
number of concurrent downloads) are threads of the processes that run the batches: the flow's
own process on the thread runner, one process per core on the process and Dask runners.

On the thread runner, batches shrink as the snapshot goes (each takes a share of what is left,
down to one image per thread): the first are big, so orchestration stays O(log N) task runs for
small snapshots, and the last are small, so the validation left after the last download is
short.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from gallery_snapshot.config import Runner

T = TypeVar("T")

# Each batch takes this share of the images not yet in a batch: a quarter keeps the batches
# in flight fed, in O(log N) batches (14 for 2,000 images at 32 workers).
BATCH_SHARE = 4
# At most this many images per task run: a batch's results (and its loss to a crash) stay
# small, and the progress artifact moves at least every batch, at any N.
MAX_BATCH = 1000
# Batches per process on the process runner and Dask: there a process runs one batch at a
# time, so each batch's end idles its threads until the next starts: few, even batches (two
# per process), since shrinking ones cost Dask a quarter of its throughput.
BATCHES_PER_PROCESS = 2
# Download batches in flight at a time on the thread runner. They share the process's
# download threads, so this many batches keep those threads fed across each batch's end.
DOWNLOADS_IN_FLIGHT = 3


@dataclass(frozen=True)
class BatchPlan:
    processes: int  # processes downloading at once (1: the flow's own, on the thread runner)
    threads: int  # download threads in each, shared by the batches it runs
    sizes: tuple[int, ...]  # images per batch, in order


def plan_batches(n_links: int, *, runner: Runner, workers: int, cpus: int) -> BatchPlan:
    """Split ``workers`` concurrent downloads into processes and threads, and ``n_links``
    into batches.

    Threads: all the workers are threads of the flow's process, shared by its batches, so a
    batch's end leaves no thread idle while the next batch has images waiting. Processes and
    Dask: one process per core (a process per concurrent download would cost a Python
    interpreter with Prefect loaded each), threads inside.
    """
    if runner == "threads":
        sizes = batch_sizes(n_links, smallest=workers, largest=max(MAX_BATCH, workers))
        return BatchPlan(processes=1, threads=workers, sizes=sizes)
    processes = max(1, min(cpus, workers))
    count = max(BATCHES_PER_PROCESS * processes, math.ceil(n_links / MAX_BATCH))
    return BatchPlan(
        processes=processes,
        threads=math.ceil(workers / processes),
        sizes=even_sizes(n_links, count=count),
    )


def batch_sizes(n_links: int, *, smallest: int, largest: int) -> tuple[int, ...]:
    """Batch sizes summing to ``n_links``: each ``1/BATCH_SHARE`` of what is left, within
    ``smallest``..``largest``; a rest smaller than ``smallest`` joins the batch before it
    (a task run for one image costs the server as much as one for a thousand). One empty
    batch when there are no links, so the flow's shape stays the same."""
    sizes: list[int] = []
    left = n_links
    while left > 0:
        size = min(left, largest, max(smallest, math.ceil(left / BATCH_SHARE)))
        if left - size < smallest and left <= largest:
            size = left
        sizes.append(size)
        left -= size
    return tuple(sizes) or (0,)


def even_sizes(n_links: int, *, count: int) -> tuple[int, ...]:
    """``count`` batch sizes (fewer if there are fewer links) that differ by at most one."""
    count = max(1, min(count, n_links))
    size, extra = divmod(n_links, count)
    return tuple(size + (1 if index < extra else 0) for index in range(count))


def split(items: Sequence[T], sizes: Sequence[int]) -> list[list[T]]:
    """``items`` in contiguous batches of ``sizes`` (which must sum to ``len(items)``)."""
    if sum(sizes) != len(items):
        raise ValueError(f"batch sizes sum to {sum(sizes)}, not {len(items)}")
    batches: list[list[T]] = []
    start = 0
    for size in sizes:
        batches.append(list(items[start : start + size]))
        start += size
    return batches
