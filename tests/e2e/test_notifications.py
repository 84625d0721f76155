"""`gallery-snapshot setup --notify`: the automations fire on a real Prefect server (its
triggers and actions services on) and POST to a loopback webhook; the URL's token is never
printed, nor readable through the API."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from deployments.notifications import late_automation
from deployments.prerequisites import Scheduled
from flows.events import SNAPSHOT_COMPLETED, SNAPSHOT_FAILED, SOURCE_CHANGED
from gallery_snapshot.demo_gallery import DemoGallery
from gallery_snapshot.demo_gallery.content import Catalogue, DemoImage
from tests.support.deployments import setup_table
from tests.support.prefect_server import PrefectServer
from tests.support.snapshot_runs import run_args
from tests.support.webhook_receiver import WebhookReceiver, webhook_receiver

TOKEN = "s3cr3t-T0KEN"
FAILED = "gallery-snapshot: notify on failed or crashed runs"
CHANGED = "gallery-snapshot: notify on source changes"


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as running:
        yield running


@pytest.fixture(scope="module")
def notified(prefect_server: PrefectServer, receiver: WebhookReceiver) -> list[Any]:
    """`setup --notify URL` twice."""
    url = receiver.url(f"/hooks/{TOKEN}")
    return [prefect_server.snapshot("setup", "--notify", url) for _ in range(2)]


def automations(prefect_server: PrefectServer) -> dict[str, dict[str, Any]]:
    found = prefect_server.api("POST", "/automations/filter", json={}).json()
    return {automation["name"]: automation for automation in found}


def test_the_e2e_server_runs_automations(prefect_server: PrefectServer) -> None:
    # Without its triggers and actions services, no automation would fire in these tests.
    assert prefect_server.env["PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED"] == "true"


def test_notify_wires_the_webhook_without_ever_showing_its_token(
    prefect_server: PrefectServer, notified: list[Any]
) -> None:
    first, second = notified
    assert first.returncode == 0, first.stderr
    table = setup_table(first.stdout)
    assert table[("notification block", "custom-webhook/gallery-snapshot-notify")] == "created"
    assert table[("automation", FAILED)] == "created"
    assert table[("automation", CHANGED)] == "created"
    again = setup_table(second.stdout)
    assert again[("notification block", "custom-webhook/gallery-snapshot-notify")] == "found"
    assert again[("automation", FAILED)] == again[("automation", CHANGED)] == "found"
    for result in notified:
        assert TOKEN not in result.stdout + result.stderr
    block = prefect_server.api(
        "GET", "/block_types/slug/custom-webhook/block_documents/name/gallery-snapshot-notify"
    ).json()
    assert TOKEN not in json.dumps(block)  # the URL is a secret: obfuscated by the API
    assert TOKEN not in json.dumps(list(automations(prefect_server).values()))
    # A later setup without --notify keeps notifying it.
    later = setup_table(prefect_server.snapshot("setup").stdout)
    assert later[("automation", FAILED)] == "found"


def test_a_failed_snapshot_is_posted_to_the_webhook(
    prefect_server: PrefectServer, notified: list[Any], receiver: WebhookReceiver, tmp_path: Path
) -> None:
    with DemoGallery() as gallery:
        gallery.state.client_id = "another-id"  # the client id is rejected: the run fails
        result = prefect_server.snapshot(
            *run_args(gallery, tmp_path / "out"), env={"IMGUR_CLIENT_ID": "not-it"}
        )
    assert result.returncode == 1, result.stderr
    runs = prefect_server.api(
        "POST",
        "/flow_runs/filter",
        json={"flow_runs": {"state": {"type": {"any_": ["FAILED"]}}}, "sort": "START_TIME_DESC"},
    ).json()
    run_id = runs[0]["id"]  # the latest failed run: this one
    posted = receiver.wait_for(lambda request: runs[0]["name"] in request.body.decode())
    assert posted.method == "POST" and posted.path == f"/hooks/{TOKEN}"
    message = posted.json()
    assert message["subject"] == f"gallery-snapshot: {runs[0]['name']} Failed"
    assert "the API rejected the client id" in message["body"]
    assert run_id in message["body"]  # its page in the UI
    assert message["text"] == f"{message['subject']}\n{message['body']}"
    [failed] = events_of(prefect_server, SNAPSHOT_FAILED, run_id)
    assert (
        failed["resource"]["prefect.resource.id"] == "gallery-snapshot.source.gallery-hot-viral-day"
    )
    assert "the API rejected the client id" in failed["payload"]["error"]


def test_a_source_changed_event_is_posted(
    prefect_server: PrefectServer, notified: list[Any], receiver: WebhookReceiver
) -> None:
    source = f"gallery-snapshot.source.{uuid.uuid4().hex}"
    emit = (
        "from prefect.events import emit_event;"
        f"emit_event(event='gallery-snapshot.source.changed', resource={{'prefect.resource.id':"
        f" {source!r}}}, payload={{'new': 40, 'dropped': 35}})"
    )
    subprocess.run([sys.executable, "-c", emit], env=prefect_server.env, check=True, timeout=120)
    posted = receiver.wait_for(lambda request: source in request.body.decode())
    assert posted.json()["subject"] == f"gallery-snapshot: {source} changed"
    assert "'dropped': 35" in posted.json()["body"]


def test_a_deployment_with_no_completed_run_in_its_window_is_posted(
    prefect_server: PrefectServer, notified: list[Any], receiver: WebhookReceiver
) -> None:
    # `setup` gives each scheduled deployment a window of twice its interval (hours at least);
    # the same automation with Prefect's shortest proactive window fires within seconds.
    failed = automations(prefect_server)[FAILED]
    block_id = failed["actions"][0]["block_document_id"]
    deployment = Scheduled(
        name=f"gallery-snapshot/quiet-{uuid.uuid4().hex[:8]}", id=uuid.uuid4(), schedules=[]
    )
    wanted = late_automation(uuid.UUID(block_id), deployment, timedelta(seconds=10)).model_copy(
        update={"enabled": True}
    )
    created = prefect_server.api(
        "POST", "/automations/", json=wanted.model_dump(mode="json")
    ).json()
    try:
        posted = receiver.wait_for(lambda request: deployment.name in request.body.decode())
    finally:
        prefect_server.api("DELETE", f"/automations/{created['id']}")
    assert posted.json()["subject"] == f"gallery-snapshot: {deployment.name} is late"
    assert (
        f"No run of {deployment.name} has completed for 10 s (2 intervals"
        in (posted.json()["body"])
    )


def test_notify_takes_an_existing_notification_block_by_name(
    prefect_server: PrefectServer, notified: list[Any]
) -> None:
    block = "custom-webhook/gallery-snapshot-notify"  # the one the URL went into
    result = prefect_server.snapshot("setup", "--notify", block)
    assert result.returncode == 0, result.stderr
    table = setup_table(result.stdout)
    assert table[("notification block", block)] == "found"
    assert table[("automation", FAILED)] == "found"  # the same block: nothing to change
    save = "from prefect.blocks.system import Secret; Secret(value='x').save('not-a-notifier')"
    subprocess.run([sys.executable, "-c", save], env=prefect_server.env, check=True, timeout=120)
    for reference, message in [
        ("custom-webhook/nope", "--notify: the server has no block custom-webhook/nope"),
        ("secret/not-a-notifier", "--notify: secret/not-a-notifier is not a notification block"),
    ]:
        refused = prefect_server.snapshot("setup", "--notify", reference)
        assert refused.returncode == 2
        assert refused.stderr == f"gallery-snapshot: error: {message}\n"


def events_of(
    prefect_server: PrefectServer, name: str, flow_run_id: str, count: int = 1
) -> list[dict[str, Any]]:
    """The events ``name`` related to the flow run, once there are ``count``."""
    about = {"related": {"id": [f"prefect.flow-run.{flow_run_id}"]}}
    return prefect_server.events_until(name, about, count)


def test_snapshots_emit_their_events_and_a_big_change_is_posted(
    prefect_server: PrefectServer, notified: list[Any], receiver: WebhookReceiver, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    kept, dropped = DemoImage("Kept"), [DemoImage(f"Drop{n}") for n in range(3)]
    with DemoGallery(Catalogue([[kept, *dropped], []])) as gallery:
        env = {"IMGUR_CLIENT_ID": gallery.client_id}
        runs = [prefect_server.snapshot(*run_args(gallery, out, "--pages", "2"), env=env)]
        gallery.state.catalogue = Catalogue([[kept, DemoImage("Added")], []])  # 3 of 4 vanish
        runs.append(prefect_server.snapshot(*run_args(gallery, out, "--pages", "2"), env=env))
    assert [run.returncode for run in runs] == [0, 0], runs[-1].stderr
    flow_runs = prefect_server.api(
        "POST", "/flow_runs/filter", json={"sort": "EXPECTED_START_TIME_DESC", "limit": 50}
    ).json()
    mine = [
        run["id"] for run in flow_runs if run["parameters"]["config"].get("out_dir") == str(out)
    ]
    second, first = mine[:2]
    source = "gallery-snapshot.source.gallery-hot-viral-day"
    [completed] = events_of(prefect_server, SNAPSHOT_COMPLETED, second)
    assert completed["resource"]["prefect.resource.id"] == source
    assert {r["prefect.resource.role"] for r in completed["related"]} >= {"flow-run"}
    payload = completed["payload"]
    assert payload["counts"]["downloaded"] == 1 and payload["counts"]["reused"] == 1
    assert payload["changes"]["new"] == 1 and payload["changes"]["vanished"] == 3
    assert events_of(prefect_server, SOURCE_CHANGED, first, count=0) == []
    [changed] = events_of(prefect_server, SOURCE_CHANGED, second)
    assert changed["payload"]["changed_percent"] == 75.0 and changed["payload"]["threshold"] == 25.0
    # setup's automation on the event posts it to the webhook.
    posted = receiver.wait_for(lambda request: payload["snapshot_id"] in request.body.decode())
    assert posted.json()["subject"] == "gallery-snapshot: gallery-hot-viral-day changed"
