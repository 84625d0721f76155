"""A flow run retried as the UI does (the same flow run, AwaitingRetry) shows the batches its
first attempt completed as Cached, and requests no image that attempt fetched."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.flow_engine import run_flow
from prefect.results import get_default_result_storage
from prefect.states import Scheduled

import tasks.images
from flows.snapshot import gallery_snapshot
from gallery_snapshot.batching import plan_batches
from gallery_snapshot.config import SnapshotConfig, SourceSpec
from gallery_snapshot.demo_gallery import DEMO_CLIENT_ID, DemoGallery, bulk_catalogue
from gallery_snapshot.errors import SnapshotError
from gallery_snapshot.models import FetchResult
from tasks.cache import results_folder
from tests.support.snapshot_runs import manifests

FAILING = "/B0000011.jpg"  # in the last batch of 12 images, one download at a time


def task_run_states(flow_run_id: Any, but: Iterable[str] = ()) -> dict[str, str]:
    """{task run name: state name} of the flow run's task runs, but those whose ids are in
    ``but`` (an earlier attempt's: a retry's task runs are new ones, of the same names)."""
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return {
        run.name: f"{run.state.name}:{run.id}"
        for run in runs
        if run.state is not None and str(run.id) not in set(but)
    }


def settled_states(flow_run_id: Any, validations: int, but: Iterable[str] = ()) -> dict[str, str]:
    """``task_run_states`` once none shows Running and all ``validations`` are there and
    named: the server records task runs and their states from events, after the flow has
    seen them (a hang bound)."""
    deadline = time.monotonic() + 60
    while True:
        states = task_run_states(flow_run_id, but)
        running = [state for state in states.values() if state.startswith("Running")]
        unnamed = [name for name in states if name.startswith("validate_images-")]
        named = [name for name in states if name.startswith("validate_images[")]
        settled = not (running or unnamed) and len(named) >= validations
        if settled or time.monotonic() > deadline:
            return states
        time.sleep(0.5)


def state_names(states: dict[str, str]) -> dict[str, str]:
    return {name: state.split(":")[0] for name, state in states.items()}


def test_a_retried_run_shows_completed_batches_cached_and_fetches_nothing_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_validate = tasks.images.validate_batch
    others = len(plan_batches(12, runner="threads", workers=1, cpus=1).sizes) - 1
    validated: list[int] = []
    progress = threading.Condition()

    def validate_failing_once(fetched: list[FetchResult], options: Any) -> Any:
        if not validated.count(-1) and any(r.link.url.endswith(FAILING) for r in fetched):
            with progress:  # the other batches validated first (a hang bound, no timing)
                progress.wait_for(lambda: len(validated) == others, timeout=120)
                validated.append(-1)
            raise SnapshotError("the disk is full")  # the run fails; the user frees space
        records = real_validate(fetched, options)
        with progress:
            validated.append(len(records))
            progress.notify_all()
        return records

    monkeypatch.setattr(tasks.images, "validate_batch", validate_failing_once)
    monkeypatch.setenv("IMGUR_CLIENT_ID", DEMO_CLIENT_ID)
    with DemoGallery(bulk_catalogue(12, kilobytes=10)) as gallery:
        config = SnapshotConfig(
            source=SourceSpec(api_url=gallery.api_url, pages=1),
            allowed_hosts=[gallery.image_host],
            out_dir=str(tmp_path / "out"),
            workers=1,
        )
        parameters = {"config": config}
        with get_client(sync_client=True) as client:
            flow_run = client.create_flow_run(gallery_snapshot, parameters=parameters)
        first = run_flow(
            gallery_snapshot, flow_run=flow_run, parameters=parameters, return_type="state"
        )
        assert first.message == "the disk is full", first  # type: ignore[union-attr]
        first_runs = settled_states(flow_run.id, others + 1)
        first_states = state_names(first_runs)
        # What the UI's Retry does: the same flow run, AwaitingRetry, run again.
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(flow_run.id, Scheduled(name="AwaitingRetry"), force=True)
            flow_run = client.read_flow_run(flow_run.id)
        second = run_flow(
            gallery_snapshot, flow_run=flow_run, parameters=parameters, return_type="state"
        )
        assert second.is_completed(), second  # type: ignore[union-attr]
        requests = collections.Counter(path for path, _ in gallery.state.requests)
    first_ids = [state.split(":")[1] for state in first_runs.values()]
    states = state_names(settled_states(flow_run.id, others + 1, but=first_ids))
    validated_first = {
        name for name, state in first_states.items() if name.startswith("validate_images[")
    }
    assert len(validated_first) >= 3, first_states  # the batches, the failed one among them
    cached = {name for name, state in states.items() if state == "Cached"}
    # Every batch the first attempt validated, and the listing: Cached; the failed batch ran.
    completed_first = {name for name in validated_first if first_states[name] == "Completed"}
    assert completed_first and completed_first < validated_first, first_states
    assert completed_first <= cached, states
    assert {name.rsplit("-", 1)[0] for name in cached} >= {"fetch_links", "filter_links"}, states
    assert not cached & (validated_first - completed_first), states
    assert [path for path, count in requests.items() if count > 1] == []
    [manifest] = manifests(tmp_path / "out")
    assert manifest["counts"]["downloaded"] == 12
    # The run completed: its results are forgotten.
    storage = Path(get_default_result_storage().basepath)  # type: ignore[attr-defined]
    assert not results_folder(storage, str(flow_run.id)).exists()
