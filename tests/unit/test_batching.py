import pytest

from gallery_snapshot.batching import plan_batches, split


@pytest.mark.parametrize("workers", [1, 2, 7, 8, 16, 20, 33, 64, 100, 512])
@pytest.mark.parametrize("runner", ["threads", "processes", "dask"])
def test_plan_reaches_the_requested_concurrency(workers: int, runner: str) -> None:
    plan = plan_batches(2000, runner=runner, workers=workers, cpus=2)  # type: ignore[arg-type]
    assert workers <= plan.concurrency < workers + plan.slots
    if runner != "threads":
        assert plan.slots <= 2  # one process per core, threads inside


def test_batches_stay_few_for_many_images() -> None:
    plan = plan_batches(20_000, runner="threads", workers=64, cpus=2)
    assert plan.batch_count == plan.slots * 4
    assert plan.batch_count < 100


def test_small_snapshots_get_no_empty_batches() -> None:
    assert plan_batches(3, runner="threads", workers=8, cpus=2).batch_count == 3
    assert plan_batches(0, runner="threads", workers=8, cpus=2).batch_count == 1


def test_split_is_contiguous_and_balanced() -> None:
    batches = split(list(range(10)), 3)
    assert batches == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert split([], 4) == [[]]
    assert split([1, 2], 5) == [[1], [2]]
