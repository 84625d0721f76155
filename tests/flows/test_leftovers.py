"""Task runs that crashed or cancelled runs left Running end with them (the e2e twin:
test_a_run_whose_worker_is_killed_is_crashed_after_missed_heartbeats)."""

from uuid import UUID

from prefect import flow, get_client, task
from prefect.states import Cancelled, Completed, Crashed, Running

from flows.leftovers import end_leftover_task_runs


@flow(name="gallery-snapshot")
def snapshot_stand_in() -> None:
    """Only its name matters: the runs below are made through the API."""


@flow(name="another-flow")
def another_flow() -> None:
    """A flow whose runs are none of this flow's business."""


@task
def step() -> None:
    """The task of the task runs below."""


@flow
def tidy() -> int:
    return end_leftover_task_runs("gallery-snapshot")


def test_task_runs_left_by_crashed_or_cancelled_runs_end_in_their_state() -> None:
    with get_client(sync_client=True) as client:

        def run_with_task_runs(parent: object, ending: object | None) -> tuple[UUID, list[UUID]]:
            run = client.create_flow_run(parent, state=Running())  # type: ignore[arg-type]
            task_runs = [
                client.create_task_run(step, run.id, dynamic_key=str(n), state=state).id
                for n, state in enumerate([Running(), Running(), Completed()])
            ]
            if ending is not None:
                client.set_flow_run_state(run.id, ending, force=True)  # type: ignore[arg-type]
            return run.id, task_runs

        _, crashed = run_with_task_runs(snapshot_stand_in, Crashed(message="no heartbeat"))
        _, cancelled = run_with_task_runs(snapshot_stand_in, Cancelled())
        _, alive = run_with_task_runs(snapshot_stand_in, None)
        _, foreign = run_with_task_runs(another_flow, Crashed())

        assert tidy() == 4

        def types(task_runs: list[UUID]) -> list[str]:
            return [client.read_task_run(run).state_type.value for run in task_runs]  # type: ignore[union-attr]

        assert types(crashed) == ["CRASHED", "CRASHED", "COMPLETED"]
        assert types(cancelled) == ["CANCELLED", "CANCELLED", "COMPLETED"]
        assert types(alive) == ["RUNNING", "RUNNING", "COMPLETED"]
        assert types(foreign) == ["RUNNING", "RUNNING", "COMPLETED"]
        message = client.read_task_run(crashed[0]).state.message  # type: ignore[union-attr]
        assert message == "its flow run crashed"
        assert tidy() == 0
