import pytest

from gallery_snapshot.batching import BATCHES_PER_SLOT, MAX_THREAD_SLOTS, plan_batches, split


@pytest.mark.parametrize("workers", [1, 2, 7, 8, 16, 20, 33, 64, 100, 512])
@pytest.mark.parametrize("runner", ["threads", "processes", "dask"])
def test_plan_reaches_the_requested_concurrency(workers: int, runner: str) -> None:
    plan = plan_batches(2000, runner=runner, workers=workers, cpus=2)  # type: ignore[arg-type]
    assert workers <= plan.concurrency < workers + plan.slots
    if runner != "threads":
        assert plan.slots <= 2  # one process per core, threads inside


def test_task_runs_stay_few_however_many_images() -> None:
    # Orchestration is O(batches): a task run costs the server ~38 ms of CPU.
    for images in (2_000, 20_000, 200_000):
        plan = plan_batches(images, runner="threads", workers=64, cpus=2)
        assert plan.slots == MAX_THREAD_SLOTS and plan.threads == 16
        assert plan.batch_count == MAX_THREAD_SLOTS * BATCHES_PER_SLOT


def test_small_snapshots_keep_every_thread_busy_without_empty_batches() -> None:
    plan = plan_batches(3, runner="threads", workers=8, cpus=2)
    assert (plan.slots, plan.threads, plan.batch_count) == (4, 2, 2)
    assert plan_batches(0, runner="threads", workers=8, cpus=2).batch_count == 1
    assert plan_batches(5, runner="threads", workers=1, cpus=2).batch_count == 2


def test_split_is_contiguous_and_balanced() -> None:
    batches = split(list(range(10)), 3)
    assert batches == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert split([], 4) == [[]]
    assert split([1, 2], 5) == [[1], [2]]
