"""prefect.yaml's deployments, and their no-work-pool twins in deployments/serve.py."""

import json
from pathlib import Path

import pytest
from prefect.variables import Variable

from deployments.serve import PREFECT_YAML, declared_deployments, main, runner_deployment
from gallery_snapshot.config import PruneConfig, SnapshotConfig


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
    for entry in declared_deployments():
        served = runner_deployment(entry)
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
        actives = [schedule.active for schedule in served.schedules or []]
        assert actives == [
            schedule.get("active", True) for schedule in entry.get("schedules") or []
        ]


def test_a_deployment_writes_to_the_object_store_the_variable_names() -> None:
    (entry,) = [e for e in declared_deployments() if e["name"] == "viral-to-object-store"]
    Variable.set("gallery_snapshot_bucket", "my-bucket", overwrite=True)
    config = SnapshotConfig.model_validate(runner_deployment(entry).parameters["config"])
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
