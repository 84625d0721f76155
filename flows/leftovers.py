"""Task runs that earlier runs of this flow left Running end in their flow run's state.

When the zombie-run automation sets a flow run Crashed, the process that ran it is gone (its
worker was killed, its machine died), and nothing ends its task runs: they would show Running
for ever. The same goes for a run cancelled while its process could not end its task runs
(the command interrupted with Ctrl-C). Every snapshot, first thing, ends the task runs such
runs left: unattended, on whichever worker runs the next one.
"""

from __future__ import annotations

import httpx
from prefect import State, get_client, get_run_logger
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    TaskRunFilter,
    TaskRunFilterState,
    TaskRunFilterStateType,
)
from prefect.client.schemas.objects import StateType

UNFINISHED = [StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING]
ENDINGS = {StateType.CRASHED: "crashed", StateType.CANCELLED: "was cancelled"}


def end_leftover_task_runs(flow_name: str) -> int:
    """Set the unfinished task runs of the Crashed or Cancelled runs of ``flow_name`` to
    their flow run's state; how many there were. An API error is a warning: the snapshot
    matters more."""
    ended = 0
    try:
        with get_client(sync_client=True) as client:
            for ending, verb in ENDINGS.items():
                for task_run in client.read_task_runs(
                    flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
                    flow_run_filter=FlowRunFilter(
                        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[ending]))
                    ),
                    task_run_filter=TaskRunFilter(
                        state=TaskRunFilterState(type=TaskRunFilterStateType(any_=UNFINISHED))
                    ),
                ):
                    message = f"its flow run {verb}"
                    client.set_task_run_state(
                        task_run.id, State(type=ending, message=message), force=True
                    )
                    ended += 1
    except httpx.HTTPError as exc:
        get_run_logger().warning("could not end the task runs of ended runs: %s", exc)
    if ended:
        get_run_logger().info("ended %d task runs left by crashed or cancelled runs", ended)
    return ended
