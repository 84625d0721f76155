import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gallery_snapshot.batching import MAX_BATCH, batch_sizes, plan_batches, split


@pytest.mark.parametrize("workers", [1, 2, 7, 8, 16, 20, 33, 64, 100, 512])
@pytest.mark.parametrize("runner", ["threads", "processes", "dask"])
def test_plan_reaches_the_requested_concurrency(workers: int, runner: str) -> None:
    plan = plan_batches(2000, runner=runner, workers=workers, cpus=2)  # type: ignore[arg-type]
    assert workers <= plan.processes * plan.threads < workers + plan.processes
    if runner == "threads":
        assert (plan.processes, plan.threads) == (1, workers)  # the flow's own threads
    else:
        assert plan.processes <= 2  # one process per core, threads inside


@given(
    n_links=st.integers(0, 300_000),
    smallest=st.integers(1, 600),
    largest=st.integers(1, 5_000),
)
def test_batch_sizes_cover_the_links_in_shrinking_batches(
    n_links: int, smallest: int, largest: int
) -> None:
    largest = max(largest, smallest)
    sizes = batch_sizes(n_links, smallest=smallest, largest=largest)
    assert sum(sizes) == n_links
    if n_links == 0:
        assert sizes == (0,)  # one empty batch: the flow keeps its shape
        return
    assert all(0 < size <= largest for size in sizes)
    assert all(size >= smallest for size in sizes[:-1])
    # A rest under ``smallest`` joins the batch before it, unless the two exceed ``largest``.
    assert sizes[-1] >= smallest or len(sizes) == 1 or sizes[-2] + sizes[-1] > largest
    # Shrinking, and the validation left after the last download is of one small batch,
    # whatever N.
    assert list(sizes[:-1]) == sorted(sizes[:-1], reverse=True)
    assert sizes[-1] < 2 * smallest or len(sizes) == 1 or sizes[-1] <= sizes[-2]
    # Orchestration stays O(log N) task runs, plus one per ``largest`` images.
    assert len(sizes) <= n_links / largest + 4 * math.log(n_links / smallest + 1) + 3


def test_task_runs_stay_few_and_batches_small_however_many_images() -> None:
    # A task run costs the server ~38 ms of CPU; a batch's results are held in memory.
    for images, most in ((2_000, 16), (20_000, 40), (200_000, 220)):
        plan = plan_batches(images, runner="threads", workers=64, cpus=2)
        assert len(plan.sizes) <= most and max(plan.sizes) <= MAX_BATCH


@pytest.mark.parametrize("runner", ["processes", "dask"])
def test_process_runners_get_few_even_batches(runner: str) -> None:
    # There a process runs one batch at a time: each batch's end idles its threads.
    plan = plan_batches(300, runner=runner, workers=8, cpus=2)  # type: ignore[arg-type]
    assert plan.threads == 4 and plan.sizes == (75, 75, 75, 75)
    big = plan_batches(20_001, runner=runner, workers=64, cpus=2)  # type: ignore[arg-type]
    assert len(big.sizes) == 21 and max(big.sizes) - min(big.sizes) <= 1
    assert plan_batches(3, runner=runner, workers=8, cpus=2).sizes == (1, 1, 1)  # type: ignore[arg-type]


def test_small_snapshots_are_one_batch() -> None:
    assert plan_batches(3, runner="threads", workers=8, cpus=2).sizes == (3,)
    assert plan_batches(0, runner="threads", workers=8, cpus=2).sizes == (0,)
    assert plan_batches(5, runner="threads", workers=1, cpus=2).sizes == (2, 1, 1, 1)
    # No task run for a rest smaller than the threads: 2,000 at 8 workers ends (..., 8, 9).
    assert plan_batches(2000, runner="threads", workers=8, cpus=2).sizes[-2:] == (8, 9)


def test_split_is_contiguous_in_the_given_sizes() -> None:
    assert split(list(range(10)), (4, 3, 3)) == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert split([], (0,)) == [[]]
    with pytest.raises(ValueError, match="sum to 3, not 2"):
        split([1, 2], (2, 1))
