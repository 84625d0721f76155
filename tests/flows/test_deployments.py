"""prefect.yaml's deployments, and their no-work-pool twins in deployments/serve.py."""

import contextlib
import json
from pathlib import Path

import pytest
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectNotFound
from prefect.variables import Variable

from deployments.prerequisites import PREFECT_YAML
from deployments.serve import declared_deployments, main, runner_deployment
from gallery_snapshot.config import PruneConfig, SnapshotConfig
from tasks.links import CLIENT_ID_BLOCK


def test_every_declared_deployment_is_valid_and_shares_the_definitions() -> None:
    declared = declared_deployments()
    names = [entry["name"] for entry in declared]
    assert names[0] == "demo" and len(names) >= 3
    forms = {
        "flows.snapshot:gallery_snapshot": SnapshotConfig,
        "flows.prune:gallery_prune": PruneConfig,
    }
    for entry in declared:
        assert entry["entrypoint"] in forms  # module paths: no checkout needed
        assert entry["work_pool"]["name"] == "gallery-snapshot"
        # The UI form, as `prefect deploy` leaves it: Prefect Variables resolved.
        config = json.loads(
            json.dumps(entry["parameters"]["config"]).replace(
                "{{ prefect.variables.gallery_snapshot_bucket }}", "my-bucket"
            )
        )
        forms[entry["entrypoint"]].model_validate(config)
    assert [e["name"] for e in declared if "prune" in e["entrypoint"]] == ["prune-weekly"]
    scheduled = [entry for entry in declared if entry.get("schedules")]
    assert len(scheduled) >= 2
    assert all(not entry["parameters"]["config"].get("demo_gallery") for entry in scheduled)


def test_served_deployments_are_built_from_the_same_definitions() -> None:
    Variable.set("gallery_snapshot_bucket", "test-bucket", overwrite=True)
    Secret(value="an-id").save(CLIENT_ID_BLOCK, overwrite=True)
    for entry in declared_deployments():
        served, paused_because = runner_deployment(entry)
        assert served.name == entry["name"]
        assert served.entrypoint is not None
        assert served.entrypoint.rsplit(":", 1)[-1] == entry["entrypoint"].rsplit(":", 1)[-1]
        template = "{{ prefect.variables.gallery_snapshot_bucket }}"
        expected = {
            name: value.replace(template, "test-bucket") if isinstance(value, str) else value
            for name, value in entry["parameters"]["config"].items()
        }
        assert served.parameters["config"] == expected
        crons = [schedule.schedule.cron for schedule in served.schedules or []]  # type: ignore[union-attr]
        assert crons == [schedule["cron"] for schedule in entry.get("schedules") or []]
        # Everything their runs need exists: served schedules run.
        assert paused_because == []
        assert all(schedule.active for schedule in served.schedules or [])
        declared_limit = entry.get("concurrency_limit")
        if declared_limit is None:
            assert served.concurrency_limit is None
            continue
        assert served.concurrency_limit == declared_limit["limit"] == 1
        assert served.concurrency_options is not None
        assert (
            served.concurrency_options.collision_strategy.value
            == (declared_limit["collision_strategy"])
        )


def test_served_schedules_stay_paused_without_what_their_runs_need() -> None:
    Variable.unset("gallery_snapshot_bucket")
    with get_client(sync_client=True) as client, contextlib.suppress(ObjectNotFound):
        client.delete_block_document(
            client.read_block_document_by_name(CLIENT_ID_BLOCK, "secret").id
        )
    declared = {entry["name"]: entry for entry in declared_deployments()}
    hourly, why = runner_deployment(declared["viral-hourly"])
    assert [schedule.active for schedule in hourly.schedules or []] == [False]
    assert why == [
        "no Secret block 'imgur-client-id' on the server "
        "(`IMGUR_CLIENT_ID=... gallery-snapshot setup` stores it)"
    ]
    _, why = runner_deployment(declared["viral-to-object-store"])
    assert why[0].startswith("the Prefect Variable gallery_snapshot_bucket is not set")
    prune, why = runner_deployment(declared["prune-weekly"])
    assert why == [] and [schedule.active for schedule in prune.schedules or []] == [True]


def test_a_deployment_writes_to_the_object_store_the_variable_names() -> None:
    (entry,) = [e for e in declared_deployments() if e["name"] == "viral-to-object-store"]
    Variable.set("gallery_snapshot_bucket", "my-bucket", overwrite=True)
    served, _ = runner_deployment(entry)
    config = SnapshotConfig.model_validate(served.parameters["config"])
    assert config.out_dir == "s3://my-bucket/snapshots/viral"
    assert [schedule.get("active") for schedule in entry["schedules"]] == [False]


def test_serving_an_unknown_deployment_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["nope"])
    assert raised.value.code == 2
    assert "unknown deployment(s) nope" in capsys.readouterr().err


def test_the_package_carries_the_checkouts_prefect_yaml_not_a_copy() -> None:
    repo = Path(__file__).resolve().parents[2]
    packaged = repo / "deployments" / "prefect.yaml"
    # A link, so there is one file to edit; the wheel holds its content (see pyproject.toml).
    assert packaged.is_symlink() and packaged.resolve() == (repo / "prefect.yaml").resolve()
    assert PREFECT_YAML.read_bytes() == (repo / "prefect.yaml").read_bytes()


def test_serving_a_name_deployed_to_a_work_pool_is_a_clear_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # `prefect deploy --all` made gallery-snapshot/demo a pool deployment: serving it would
    # take the name over and every run would crash loading code "from storage at None".
    served, _ = runner_deployment(declared_deployments()[0])
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name="serve-test-pool", type="process"))
        flow_id = client.create_flow_from_name("gallery-snapshot")
        deployment_id = client.create_deployment(
            flow_id=flow_id,
            name=served.name,
            entrypoint=served.entrypoint,
            work_pool_name="serve-test-pool",
        )
    try:
        with pytest.raises(SystemExit) as raised:
            main([served.name])
        assert raised.value.code == 2
        [line] = capsys.readouterr().err.strip().splitlines()[-1:]
        assert "gallery-snapshot/demo is deployed to work pool 'serve-test-pool'" in line
        with get_client(sync_client=True) as client:  # left as it was
            assert client.read_deployment(deployment_id).work_pool_name == "serve-test-pool"
    finally:
        with get_client(sync_client=True) as client:
            client.delete_deployment(deployment_id)
            client.delete_work_pool("serve-test-pool")
