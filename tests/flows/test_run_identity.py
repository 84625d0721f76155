"""What names a run, its snapshot and its artifacts: fixed when the run is created (its source,
its scheduled start, its id), kept by a retry of the same flow run (the UI's Retry), and per
source rather than per deployment. Runs are driven as a worker drives them: created on the
server, then run by the engine under their own id."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import Flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import FlowRun
from prefect.flow_engine import run_flow
from prefect.states import AwaitingRetry, Scheduled

from flows.prune import gallery_prune
from flows.snapshot import gallery_snapshot
from gallery_snapshot.config import PruneConfig, SnapshotConfig, SourceSpec
from tests.support.manifests import read_document
from tests.support.stores import record_snapshot
from tests.support.terminal_user import forget_terminal_user

# Two hours ago: a run that waited for its worker, or one retried later on.
SCHEDULED = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)


def create_run(flow: Flow[..., Any], parameters: dict[str, Any]) -> FlowRun:
    with get_client(sync_client=True) as client:
        return client.create_flow_run(
            flow, parameters=parameters, state=Scheduled(scheduled_time=SCHEDULED)
        )


def run_again(flow: Flow[..., Any], flow_run_id: UUID) -> FlowRun:
    """Run ``flow_run_id`` as a worker does, then read it back."""
    with get_client(sync_client=True) as client:
        run_flow(flow, flow_run=client.read_flow_run(flow_run_id), return_type="state")
        return client.read_flow_run(flow_run_id)


def retry(flow_run_id: UUID) -> None:
    """What the UI's Retry button does: the same flow run, AwaitingRetry."""
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(flow_run_id, AwaitingRetry(), force=True)


def suffix(flow_run: FlowRun) -> str:
    return flow_run.id.hex[-6:]


def demo_config(out: Path) -> dict[str, Any]:
    config = SnapshotConfig(demo_gallery=True, source=SourceSpec(pages=3), out_dir=str(out))
    return {"config": config.model_dump(mode="json")}


def test_a_retried_run_keeps_its_name_and_its_snapshot_id(tmp_path: Path) -> None:
    blocker = tmp_path / "out"
    blocker.write_text("a file where the output folder should be")
    created = create_run(gallery_snapshot, demo_config(blocker))

    first = run_again(gallery_snapshot, created.id)
    assert first.state_type is not None and first.state_type.value == "FAILED"
    name = f"demo-{SCHEDULED:%Y-%m-%d-%H%M}-{suffix(created)}"
    assert first.name == name  # from its scheduled start, not the minute it ran

    blocker.unlink()
    retry(created.id)
    second = run_again(gallery_snapshot, created.id)
    assert second.state_type is not None and second.state_type.value == "COMPLETED"
    assert second.name == name
    [manifest] = [read_document(p) for p in blocker.glob("snapshots/*/manifest.json")]
    assert manifest["snapshot_id"] == f"{SCHEDULED:%Y%m%dT%H%M%SZ}-{suffix(created)}"


def test_runs_that_fail_on_their_parameters_are_named_too(tmp_path: Path) -> None:
    created = create_run(gallery_snapshot, {"config": {"source": {"kind": "subreddit"}}})
    ended = run_again(gallery_snapshot, created.id)
    assert ended.state_type is not None and ended.state_type.value == "FAILED"
    assert ended.name == f"invalid-config-{SCHEDULED:%Y-%m-%d-%H%M}-{suffix(created)}"


def test_prune_runs_are_named_after_their_folders(tmp_path: Path) -> None:
    viral, top = tmp_path / "snapshots" / "viral", tmp_path / "snapshots" / "top"
    record_snapshot(viral, "01-x", [1])
    config = PruneConfig(out_dirs=[str(viral), str(top)], keep_last=1)
    created = create_run(gallery_prune, {"config": config.model_dump(mode="json")})
    ended = run_again(gallery_prune, created.id)
    assert ended.state_type is not None and ended.state_type.value == "COMPLETED"
    assert ended.name == f"prune-viral-top-{SCHEDULED:%Y-%m-%d-%H%M}-{suffix(created)}"


def test_a_custom_run_of_another_source_keeps_out_of_the_deployments_history(
    tmp_path: Path,
) -> None:
    deployment_id = gallery_snapshot.to_deployment(name="viral-hourly").apply()
    with get_client(sync_client=True) as client:
        created = client.create_flow_run_from_deployment(
            deployment_id, parameters=demo_config(tmp_path / "out")
        )
    ended = run_again(gallery_snapshot, created.id)
    assert ended.state_type is not None and ended.state_type.value == "COMPLETED"
    assert "source:demo" in ended.tags
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[created.id]))
        )
    keys = {artifact.key for artifact in artifacts}
    assert keys == {
        "viral-hourly-demo-summary",
        "viral-hourly-demo-report",
        "viral-hourly-demo-progress",
        "viral-hourly-demo-contact-sheet",
        "viral-hourly-demo-trend",
    }


def test_a_deployment_run_never_reads_standard_input(tmp_path: Path) -> None:
    forget_terminal_user()  # a worker's process, not the command line's
    deployment_id = gallery_snapshot.to_deployment(name="urls").apply()
    config = SnapshotConfig(source=SourceSpec(kind="urls", urls_file="-"), out_dir=str(tmp_path))
    with get_client(sync_client=True) as client:
        created = client.create_flow_run_from_deployment(
            deployment_id, parameters={"config": config.model_dump(mode="json")}
        )
    ended = run_again(gallery_snapshot, created.id)
    assert ended.state is not None and ended.state.type.value == "FAILED"
    assert "standard input) is for the command line only" in str(ended.state.message)
    assert created.expected_start_time is not None
    due = created.expected_start_time.astimezone(UTC)
    assert ended.name == f"urls-stdin-{due:%Y-%m-%d-%H%M}-{suffix(created)}"
