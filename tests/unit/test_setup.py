"""What `gallery-snapshot setup` decides without a server: prefect.yaml's schedules and
concurrency, when a schedule may run, how late is late, and what --notify accepts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule

from deployments.notifications import Target, late_window, parse_target
from deployments.prerequisites import declared_deployments, entrypoint_flow, missing_prerequisites

DECLARED = {entry["name"]: entry for entry in declared_deployments()}
SCHEDULED = [name for name, entry in DECLARED.items() if entry.get("schedules")]


def test_every_schedule_starts_paused() -> None:
    # `prefect deploy --all` must schedule nothing: prefect.yaml cannot see whether the client
    # id's Secret block or the bucket's Variable exist (`setup` resumes what can run).
    assert SCHEDULED
    for name in SCHEDULED:
        assert [schedule.get("active") for schedule in DECLARED[name]["schedules"]] == [False]


def test_every_scheduled_deployment_runs_one_run_at_a_time() -> None:
    for name in SCHEDULED:
        limit = DECLARED[name].get("concurrency_limit")
        # A snapshot overlapping its predecessor is dropped; a prune waits its turn.
        strategy = "ENQUEUE" if "prune" in DECLARED[name]["entrypoint"] else "CANCEL_NEW"
        assert limit == {"limit": 1, "collision_strategy": strategy}, name


def reasons(name: str, parameters: dict[str, Any], **server: Any) -> list[str]:
    entry = DECLARED[name]
    return missing_prerequisites(
        entrypoint_flow(entry["entrypoint"]), entry["parameters"], parameters, **server
    )


def test_a_schedule_runs_only_with_what_its_runs_need() -> None:
    everything = {"variables": {"gallery_snapshot_bucket"}, "has_client_id": True}
    hourly = DECLARED["viral-hourly"]["parameters"]
    assert reasons("viral-hourly", hourly, **everything) == []
    assert reasons("viral-hourly", hourly, variables=set(), has_client_id=False) == [
        "no Secret block 'imgur-client-id' on the server "
        "(`IMGUR_CLIENT_ID=... gallery-snapshot setup` stores it)"
    ]
    # Pruning and the demo gallery need no client id.
    prune = DECLARED["prune-weekly"]["parameters"]
    assert reasons("prune-weekly", prune, variables=set(), has_client_id=False) == []
    # `prefect deploy` without the Variable: an out_dir that names no bucket.
    config = DECLARED["viral-to-object-store"]["parameters"]["config"]
    deployed = {"config": {**config, "out_dir": "s3:///snapshots/viral"}}
    assert reasons("viral-to-object-store", deployed, variables=set(), has_client_id=True) == [
        "the Prefect Variable gallery_snapshot_bucket is not set "
        "(`prefect variable set gallery_snapshot_bucket VALUE`, then deploy again)"
    ]
    # The Variable set since: the deployed parameters still name no bucket.
    [reason] = reasons("viral-to-object-store", deployed, **everything)
    assert reason.startswith(
        "its parameters do not validate, deploy it again: config.out_dir: s3:///snapshots/viral:"
    )
    redeployed = {"config": {**config, "out_dir": "s3://my-bucket/snapshots/viral"}}
    assert reasons("viral-to-object-store", redeployed, **everything) == []


@pytest.mark.parametrize(
    ("schedule", "window"),
    [
        (CronSchedule(cron="5 * * * *"), timedelta(hours=2)),
        (CronSchedule(cron="30 6 * * *", timezone="Europe/Paris"), timedelta(days=2)),
        (CronSchedule(cron="0 7 * * 1"), timedelta(days=14)),
        (CronSchedule(cron="0 9 * * 1-5"), timedelta(days=6)),  # Friday to Monday, twice
        (IntervalSchedule(interval=timedelta(minutes=20)), timedelta(minutes=40)),
        (RRuleSchedule(rrule="FREQ=DAILY"), None),
    ],
)
def test_a_scheduled_deployment_is_late_after_twice_its_longest_interval(
    schedule: Any, window: timedelta | None
) -> None:
    assert late_window(schedule) == window


def test_notify_takes_a_webhook_url_or_a_notification_block() -> None:
    url = "https://hooks.example.com/services/T0/B0/s3cr3t"
    assert parse_target(url) == Target(url=url)
    assert parse_target("slack-webhook/ops") == Target(block="slack-webhook/ops")
    for bad in ("hooks.example.com/services/T0/B0/s3cr3t", "ftp://host/s3cr3t", "ops", "http://"):
        with pytest.raises(ValueError) as raised:
            parse_target(bad)
        assert "s3cr3t" not in str(raised.value)  # a token in a URL is never repeated
