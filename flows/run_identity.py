"""A flow run's name and source tag on the server (see ``gallery_snapshot.naming``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from prefect import Flow, State
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.context import FlowRunContext
from prefect.flows import FlowStateHook

from gallery_snapshot.naming import run_name, snapshot_id

Label = Callable[[Any], str]  # the flow's ``config`` parameter -> what its runs are named after


def scheduled_start(run: FlowRun) -> datetime:
    """When the run was due: set by the server with the run's first state, never changed (a
    retry keeps it)."""
    if run.expected_start_time is None:  # the server sets it with the first state
        raise ValueError(f"flow run {run.id} has no expected start time")
    return run.expected_start_time


def current_run() -> FlowRun:
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        raise RuntimeError("not in a flow run")
    return context.flow_run


def name_of(run: FlowRun, label: Label) -> str:
    return run_name(label(run.parameters.get("config")), scheduled_start(run), run.id)


def current_snapshot_id() -> str:
    run = current_run()
    return snapshot_id(scheduled_start(run), run.id)


def run_namer(label: Label) -> Callable[[], str]:
    """A flow's ``flow_run_name``: Prefect calls it as the run starts."""
    return lambda: name_of(current_run(), label)


def name_if_unnamed(label: Label) -> FlowStateHook[..., Any]:
    """A hook for runs that end before Prefect names them (it does once their parameters have
    validated): they would keep the random name Prefect gave them on creation."""

    def name_the_run(flow: Flow[..., Any], flow_run: FlowRun, state: State[Any]) -> None:
        name = name_of(flow_run, label)
        if flow_run.name != name:
            with get_client(sync_client=True) as client:
                client.set_flow_run_name(flow_run.id, name)

    return name_the_run


def tag_current_run(tag: str) -> None:
    """Add ``tag`` to this run on the server: a deployment's runs are created with the
    deployment's tags, and a custom run may be of another source."""
    run = current_run()
    if tag not in run.tags:
        with get_client(sync_client=True) as client:
            client.update_flow_run(run.id, tags=[*run.tags, tag])
