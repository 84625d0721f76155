"""The path users take: `gallery-snapshot setup`, `prefect deploy --all`, `prefect worker start`
(from any folder, with nothing exported), `prefect deployment run`; the runs, task runs and
artifacts as the server records them; and a worker killed with -9 mid-run."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gallery_snapshot.batching import plan_batches
from gallery_snapshot.demo_gallery import DEMO_CLIENT_ID, DemoGallery, bulk_catalogue
from tests.support.deployments import (
    REPO,
    UNFINISHED,
    artifacts_of,
    finished,
    log_messages,
    logs_of,
    run_deployment,
    setup_table,
    task_runs_of,
)
from tests.support.prefect_server import BIN, PrefectServer
from tests.support.processes import children, descendants, running, start_time
from tests.support.snapshot_runs import manifests

STEPS = {
    "fetch_links",
    "filter_links",
    "download_images",
    "validate_images",
    "record_manifest",
    "publish_report",
}
REPORT_KINDS = ("summary", "report", "progress", "contact-sheet", "trend")
HEARTBEAT_SECONDS = 30
# Prefect's zombie automation: three missed heartbeats; its proactive check runs every few seconds.
CRASH_DEADLINE = 3 * HEARTBEAT_SECONDS + 30
CLIENT_ID_BLOCK = "imgur-client-id"


BASICS = [
    ("work pool", "gallery-snapshot"),
    ("global rate limit", "imgur-api"),
    ("automation", "gallery-snapshot: crash zombie flow runs"),
    ("secret block", "imgur-client-id"),
]


@pytest.fixture(scope="module")
def setup_runs(prefect_server: PrefectServer) -> list[Any]:
    """`gallery-snapshot setup` twice, with the client id to store in the Secret block."""
    env = {"IMGUR_CLIENT_ID": DEMO_CLIENT_ID}
    return [prefect_server.snapshot("setup", env=env) for _ in range(2)]


@pytest.fixture(scope="module")
def deployed(prefect_server: PrefectServer, setup_runs: list[Any]) -> None:
    """What setup created, and every deployment of prefect.yaml."""
    assert all(result.returncode == 0 for result in setup_runs), setup_runs
    deploy = subprocess.run(
        [str(BIN / "prefect"), "--no-prompt", "deploy", "--all"],
        cwd=REPO,
        env=prefect_server.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    # These tests run viral-hourly back to back and kill some of its runs on purpose: a killed
    # run holds the deployment's one slot until the zombie automation crashes it (90 s), so the
    # next test's run would be cancelled (CANCEL_NEW). One run at a time is checked where it is
    # declared (test_every_scheduled_deployment_runs_one_run_at_a_time).
    viral = prefect_server.api("GET", "/deployments/name/gallery-snapshot/viral-hourly").json()
    prefect_server.api("PATCH", f"/deployments/{viral['id']}", json={"concurrency_limit": None})


@contextmanager
def worker(
    prefect_server: PrefectServer, folder: Path, gallery: DemoGallery | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`prefect worker start --pool gallery-snapshot` as the docs have it: started in a folder
    that holds no checkout, with no variable of ours (no client id), its HOME in ``folder`` (so
    runs write under ``folder/gallery-snapshot``). With ``gallery``, the worker trusts that
    gallery's API with its client id, as its operator would (GALLERY_SNAPSHOT_API_HOSTS).
    It leaves nothing behind, whatever the test did (see ``running``)."""
    env = {
        key: value
        for key, value in prefect_server.env.items()
        if not key.startswith(("GALLERY_SNAPSHOT", "IMGUR_")) and key != "PYTHONPATH"
    }
    env["HOME"] = str(folder)
    if gallery is not None:
        env["GALLERY_SNAPSHOT_API_HOSTS"] = gallery.base_url
    argv = [str(BIN / "prefect"), "worker", "start", "--pool", "gallery-snapshot"]
    with running(argv, cwd=folder, env=env, log=folder / "worker.log") as process:
        yield process


def config_for(gallery: DemoGallery, **extra: Any) -> dict[str, Any]:
    """The ``config`` parameter of a run that snapshots ``gallery`` (one page) into the
    folder ``out`` (under ``gallery-snapshot`` of the worker's HOME)."""
    return {
        "source": {"api_url": gallery.api_url, "pages": 1},
        "allowed_hosts": [gallery.image_host],
        "out_dir": "out",
        **extra,
    }


def test_setup_creates_everything_once_then_finds_it(
    prefect_server: PrefectServer, setup_runs: list[Any]
) -> None:
    first, second = setup_runs
    assert first.returncode == 0, first.stderr
    table = setup_table(first.stdout)
    assert {row: table[row] for row in BASICS} == dict.fromkeys(BASICS, "created")
    assert table[("schedules", "prefect.yaml")] == (
        "skipped: none deployed yet (`prefect deploy --all`, then setup again)"
    )
    assert table[("notifications", "-")] == "skipped: no --notify"
    assert second.returncode == 0, second.stderr
    again = setup_table(second.stdout)
    assert {row: again[row] for row in BASICS} == dict.fromkeys(BASICS, "found")
    assert DEMO_CLIENT_ID not in first.stdout + first.stderr + second.stdout + second.stderr
    pool = prefect_server.api("GET", "/work_pools/gallery-snapshot").json()
    assert pool["type"] == "process"
    template = pool["base_job_template"]
    env = template["job_configuration"]["env"]
    assert env["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] == str(HEARTBEAT_SECONDS)
    assert set(template["variables"]["properties"]) == {"name", "labels", "stream_output"}
    limit = prefect_server.api("GET", "/v2/concurrency_limits/imgur-api").json()
    assert (limit["limit"], limit["slot_decay_per_second"]) == (50, 0.14)
    [automation] = [
        automation
        for automation in prefect_server.api("POST", "/automations/filter", json={}).json()
        if automation["name"] == "gallery-snapshot: crash zombie flow runs"
    ]
    assert automation["trigger"]["posture"] == "Proactive"
    assert automation["actions"] == [
        {**automation["actions"][0], "type": "change-flow-run-state", "state": "CRASHED"}
    ]
    # Something changed by hand is put back, and said so.
    prefect_server.prefect(
        "global-concurrency-limit", "update", "imgur-api", "--limit", "7"
    ).check_returncode()
    third = prefect_server.snapshot("setup")
    assert third.returncode == 0, third.stderr
    table = setup_table(third.stdout)
    assert {row: table[row] for row in BASICS} == {
        BASICS[0]: "found",
        BASICS[1]: "updated",
        BASICS[2]: "found",
        BASICS[3]: "skipped: IMGUR_CLIENT_ID is not set",
    }


def test_worker_without_a_checkout_runs_deployments_with_history(
    prefect_server: PrefectServer, deployed: None, tmp_path: Path
) -> None:
    out = tmp_path / "gallery-snapshot" / "out"  # out_dir "out" on the worker, whose HOME this is
    config = {"demo_gallery": True, "source": {"pages": 3}, "out_dir": "out"}
    with worker(prefect_server, tmp_path):
        first = run_deployment(prefect_server, "demo", config, "--watch")
        second = run_deployment(prefect_server, "demo", config, "--watch")
    assert first["state_type"] == "COMPLETED", (tmp_path / "worker.log").read_text()
    assert first["name"].startswith("demo-") and first["name"] != second["name"]
    task_runs = task_runs_of(prefect_server, first["id"])
    names = {run["name"] for run in task_runs}
    assert {name.split("[")[0].rsplit("-", 1)[0] for name in names} >= STEPS, names
    assert any(name.startswith("download_images[1-") for name in names), names
    assert all(run["state_type"] == "COMPLETED" for run in task_runs)

    artifacts = artifacts_of(prefect_server, first["id"])
    assert {"demo-summary", "demo-report", "demo-contact-sheet", "demo-progress"} <= set(artifacts)
    summary = {row["field"]: row["value"] for row in json.loads(artifacts["demo-summary"]["data"])}
    assert summary["downloaded"] == 14 and summary["invalid"] == 2 and summary["images/s"]
    assert "- **gone** `Deleted` (" in artifacts["demo-report"]["data"]
    assert "## Skipped (6)" in artifacts["demo-report"]["data"]
    assert "data:image/jpeg;base64," in artifacts["demo-contact-sheet"]["data"]
    assert artifacts["demo-progress"]["data"] == 100.0
    # The snapshot id ends like the flow run's name: with the run id's last six hex digits.
    [snapshot] = list(out.glob(f"snapshots/*-{first['id'][-6:]}"))
    assert first["name"].endswith(snapshot.name[-6:])
    assert (snapshot / "contact-sheet.jpg").is_file()

    # The second run reuses every stored image and says what changed.
    assert second["state_type"] == "COMPLETED"
    again = artifacts_of(prefect_server, second["id"])
    summary = {row["field"]: row["value"] for row in json.loads(again["demo-summary"]["data"])}
    assert (summary["downloaded"], summary["reused"]) == (0, 14)
    report = again["demo-report"]["data"]
    assert f"## Changes since `{snapshot.name}`" in report
    assert "- new: 0" in report and "- vanished: 0" in report
    # The Artifacts page keeps the history under one key per deployment.
    history = prefect_server.api(
        "POST", "/artifacts/filter", json={"artifacts": {"key": {"any_": ["demo-summary"]}}}
    ).json()
    assert len(history) >= 2


def test_the_worker_fixture_leaves_no_process_behind(
    prefect_server: PrefectServer, deployed: None, tmp_path: Path
) -> None:
    # A worker as a suite started in the background by a script (`nohup make test &`) would
    # start it: with SIGINT ignored, which Prefect's CLI turns SIGTERM into. And a flow run in
    # flight, whose process runs in a session of its own.
    with DemoGallery(bulk_catalogue(10, kilobytes=5), latency=5.0) as gallery:
        config = config_for(gallery, workers=1)
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            with worker(prefect_server, tmp_path, gallery) as process:
                signal.signal(signal.SIGINT, previous)
                run_deployment(prefect_server, "viral-hourly", config)
                deadline = time.monotonic() + 300  # a hang bound
                while len(gallery.state.requests) < 2:  # the listing, then an image
                    assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
                    time.sleep(0.2)
                started = [process.pid, *descendants(process.pid)]
        finally:
            signal.signal(signal.SIGINT, previous)
    assert len(started) >= 2
    # The flow's validation processes (and their forkserver) end once they see it has: soon.
    left = time.monotonic() + 10
    while [pid for pid in started if start_time(pid)] and time.monotonic() < left:
        time.sleep(0.1)
    assert not [pid for pid in started if start_time(pid)]


def test_a_run_whose_worker_is_killed_is_crashed_after_missed_heartbeats(
    prefect_server: PrefectServer, deployed: None, tmp_path: Path
) -> None:
    # A slow gallery (2 s an image, one download at a time) keeps the run busy for minutes.
    with DemoGallery(bulk_catalogue(60, kilobytes=10), latency=2.0) as gallery:
        config = config_for(gallery, workers=1)
        with worker(prefect_server, tmp_path, gallery) as process:
            run = run_deployment(prefect_server, "viral-hourly", config)
            deadline = time.monotonic() + 300
            while not any(
                task["name"].startswith("download_images[") and task["state_type"] == "RUNNING"
                for task in task_runs_of(prefect_server, run["id"])
            ):
                assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
                time.sleep(1)
            # The machine dies: the worker's process group, and the flow run's, which Prefect
            # starts in a session of its own.
            for pid in [process.pid, *descendants(process.pid)]:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(os.getpgid(pid), signal.SIGKILL)
            killed = time.monotonic()
            process.wait(timeout=30)
        state = "RUNNING"
        while state == "RUNNING" and time.monotonic() < killed + CRASH_DEADLINE:
            time.sleep(2)
            state = prefect_server.api("GET", f"/flow_runs/{run['id']}").json()["state_type"]
        print(f"crashed {time.monotonic() - killed:.0f} s after kill -9")
    assert state == "CRASHED"
    flow_run = prefect_server.api("GET", f"/flow_runs/{run['id']}").json()
    assert flow_run["state"]["message"].startswith("No heartbeat for 90 s")  # the automation
    left = [
        t["id"] for t in task_runs_of(prefect_server, run["id"]) if t["state_type"] == "RUNNING"
    ]
    assert left  # nothing alive could end them

    # The machine is back: its worker runs the next snapshot, which ends them.
    demo = {"demo_gallery": True, "source": {"pages": 1}, "out_dir": "demo"}
    with worker(prefect_server, tmp_path):
        after = run_deployment(prefect_server, "demo", demo, "--watch")
    assert after["state_type"] == "COMPLETED", (tmp_path / "worker.log").read_text()
    for task_run in task_runs_of(prefect_server, run["id"]):
        if task_run["id"] in left:
            assert task_run["state_type"] == "CRASHED", task_run
            assert task_run["state"]["message"] == "its flow run crashed"


def test_a_flow_process_whose_worker_is_killed_finishes_its_snapshot(
    prefect_server: PrefectServer, deployed: None, tmp_path: Path
) -> None:
    out = tmp_path / "gallery-snapshot" / "out"  # out_dir "out" on the worker, whose HOME this is
    log = tmp_path / "worker.log"
    # 30 images at 0.5 s, two at a time: the run downloads for ~8 s, logging every 2 s.
    with DemoGallery(bulk_catalogue(30, kilobytes=5), latency=0.5) as gallery:
        config = config_for(gallery, workers=2)
        with worker(prefect_server, tmp_path, gallery) as process:
            run = run_deployment(prefect_server, "viral-hourly", config)
            deadline = time.monotonic() + 300  # a hang bound
            while len(gallery.state.requests) < 4:  # the listing, then images
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            [flow_process] = children(process.pid)  # (its validation processes are its own)
            # The worker alone, as a redeploy or a service restart does: the flow process runs
            # on, in its session, its stdout and stderr pipes to the dead worker.
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            killed = datetime.now(UTC)
            run = finished(prefect_server, run, log)
            messages = log_messages(prefect_server, run["id"], "Finished in state", [flow_process])
    assert run["state_type"] == "COMPLETED", json.dumps(messages, indent=1)
    # It went on logging to the server: progress lines written after the kill.
    later = [
        log["message"]
        for log in logs_of(prefect_server, run["id"])
        if datetime.fromisoformat(log["timestamp"]) > killed
    ]
    assert any("images fetched" in message for message in later), later
    assert not [m for m in messages if "Traceback" in m or "Crash" in m]
    [manifest] = manifests(out)
    assert manifest["counts"]["downloaded"] == 30
    assert list((out / ".staging").iterdir()) == []


def test_a_rejected_client_id_is_one_line_in_the_run_logs(
    prefect_server: PrefectServer, deployed: None, tmp_path: Path
) -> None:
    with DemoGallery() as gallery:
        gallery.state.client_id = "not-the-stored-id"  # the Secret block's id is rejected
        messages = failed_run_messages(prefect_server, gallery, tmp_path)
    assert_one_line(messages, "the API rejected the client id (Invalid client_id)")


def test_a_missing_client_id_is_one_line_in_the_run_logs(
    prefect_server: PrefectServer, deployed: None, tmp_path: Path
) -> None:
    delete = prefect_server.prefect("block", "delete", f"secret/{CLIENT_ID_BLOCK}")
    assert delete.returncode == 0, delete.stdout + delete.stderr
    try:
        with DemoGallery() as gallery:
            messages = failed_run_messages(prefect_server, gallery, tmp_path)
    finally:  # the Secret block back for the tests after this one (setup would also resume
        # the schedules)
        save = f"Secret(value={DEMO_CLIENT_ID!r}).save({CLIENT_ID_BLOCK!r}, overwrite=True)"
        subprocess.run(
            [str(BIN / "python"), "-c", f"from prefect.blocks.system import Secret; {save}"],
            env=prefect_server.env,
            check=True,
            timeout=300,
        )
    assert_one_line(messages, "no Imgur client id: set IMGUR_CLIENT_ID")


def failed_run_messages(
    prefect_server: PrefectServer, gallery: DemoGallery, folder: Path
) -> list[str]:
    """The log messages of a `viral-hourly` run of ``gallery`` that has failed."""
    with worker(prefect_server, folder, gallery) as process:
        run = run_deployment(prefect_server, "viral-hourly", config_for(gallery))
        flow_processes: set[int] = set()
        deadline = time.monotonic() + 120  # a hang bound
        while run["state_type"] in UNFINISHED:
            flow_processes.update(descendants(process.pid))
            assert time.monotonic() < deadline, (folder / "worker.log").read_text()
            time.sleep(0.2)
            run = prefect_server.api("GET", f"/flow_runs/{run['id']}").json()
        messages = log_messages(
            prefect_server, run["id"], "Finished in state Failed", flow_processes
        )
    assert run["state_type"] == "FAILED", (folder / "worker.log").read_text()
    return messages


def assert_one_line(messages: list[str], error: str) -> None:
    """``error`` is told once, in the run's final state, without a traceback."""
    telling = [message for message in messages if error in message]
    assert len(telling) == 1, json.dumps(messages, indent=1)
    assert telling[0].startswith("Finished in state Failed("), telling
    repeats = ("Traceback", "Encountered exception", "Engine execution")
    assert not [m for m in messages if m.count("\n") > 1 or any(r in m for r in repeats)]


def test_cancelling_a_run_with_stuck_downloads_ends_it_cancelled_and_says_what_it_kept(
    prefect_server: PrefectServer, deployed: None, tmp_path: Path
) -> None:
    out = tmp_path / "gallery-snapshot" / "out"  # out_dir "out" on the worker, whose HOME this is
    log = tmp_path / "worker.log"
    with DemoGallery(bulk_catalogue(8, kilobytes=10)) as gallery:
        stuck = [f"/B{n:07d}.jpg" for n in range(0, 8, 2)]
        for path in stuck:  # one byte every 5 s: these downloads take hours
            gallery.state.faults[path] = ["trickle=5"]
        config = config_for(gallery, workers=4)
        with worker(prefect_server, tmp_path, gallery) as process:
            run = run_deployment(prefect_server, "viral-hourly", config)
            deadline = time.monotonic() + 120  # not a speed check: a hang bound
            while not all(gallery.state.requests_for(path) for path in stuck):
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            flow_processes = descendants(process.pid)
            assert flow_processes  # the flow run's own process
            cancel = prefect_server.prefect("flow-run", "cancel", run["id"])
            assert cancel.returncode == 0, cancel.stdout + cancel.stderr
            run = finished(prefect_server, run, log)
            assert run["state_type"] == "CANCELLED", log.read_text()
            # Never Crashed on the way (an automation paging on Crashed would fire on every
            # cancel).
            states = prefect_server.api("GET", f"/flow_run_states/?flow_run_id={run['id']}")
            assert "CRASHED" not in {state["type"] for state in states.json()}, states.json()
            assert "Crash detected" not in log.read_text()
            messages = log_messages(
                prefect_server, run["id"], "staged downloads kept", flow_processes
            )
        others = {f"/B{n:07d}.jpg" for n in range(1, 8, 2)}
        whole = [path for path in others if gallery.state.requests_for(path) == [200]]
    # Its last line says what the next run starts from; written once the stuck downloads were
    # cut (the runner's shutdown waits for every download), before Prefect's 30 s grace.
    [kept] = [m for m in messages if "staged downloads kept" in m]
    said = re.fullmatch(
        r"cancelled; (\d+) images stored, (\d+) staged downloads kept for the next run", kept
    )
    assert said, kept
    stored_count, staged_count = map(int, said.groups())
    assert stored_count + staged_count == len(whole)
    assert not [m for m in messages[messages.index(kept) :] if "images fetched" in m]
    adoptable = list((out / ".staging" / ".adoptable").glob("*/*.jpg"))
    assert len(adoptable) == staged_count


def wait_until_final(prefect_server: PrefectServer, run_id: str, log: Path) -> dict[str, Any]:
    deadline = time.monotonic() + 300  # a hang bound, not a speed check
    while True:
        run = prefect_server.api("GET", f"/flow_runs/{run_id}").json()
        if run["state_type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:
            return run  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(1)


def test_a_retried_custom_run_keeps_its_name_snapshot_and_source_keys(
    prefect_server: PrefectServer, deployed: None, tmp_path: Path
) -> None:
    blocker = tmp_path / "gallery-snapshot" / "out"  # out_dir "out" on the worker (its HOME)
    blocker.parent.mkdir()
    blocker.write_text("a file where the output folder should be")
    # A custom run of another source (the demo gallery) on a scheduled deployment.
    config = {"demo_gallery": True, "source": {"pages": 3}, "out_dir": "out"}
    with worker(prefect_server, tmp_path):
        run = run_deployment(prefect_server, "viral-hourly", config)
        first = wait_until_final(prefect_server, run["id"], tmp_path / "worker.log")
        assert first["state_type"] == "FAILED", (tmp_path / "worker.log").read_text()
        blocker.unlink()
        # What the UI's Retry does: the same flow run, AwaitingRetry.
        prefect_server.api(
            "POST",
            f"/flow_runs/{run['id']}/set_state",
            json={"state": {"type": "SCHEDULED", "name": "AwaitingRetry"}, "force": True},
        )
        second = wait_until_final(prefect_server, run["id"], tmp_path / "worker.log")
    assert second["state_type"] == "COMPLETED", (tmp_path / "worker.log").read_text()
    assert second["run_count"] == 2
    scheduled = datetime.fromisoformat(run["expected_start_time"]).astimezone(UTC)
    assert first["name"] == second["name"] == f"demo-{scheduled:%Y-%m-%d-%H%M}-{run['id'][-6:]}"
    assert {"source:demo", "gallery-snapshot"} <= set(second["tags"])
    logs = prefect_server.api(
        "POST", "/logs/filter", json={"logs": {"flow_run_id": {"any_": [run["id"]]}}}
    ).json()
    started = {m.split()[1] for m in (log["message"] for log in logs) if m.startswith("snapshot ")}
    [manifest] = manifests(blocker)
    # Both attempts were the one snapshot, the id of which is fixed at the run's creation.
    assert started == {manifest["snapshot_id"]}, started
    assert manifest["snapshot_id"] == f"{scheduled:%Y%m%dT%H%M%SZ}-{run['id'][-6:]}"
    keys = {key for key in artifacts_of(prefect_server, run["id"]) if key}  # None: the failure's
    assert keys == {f"viral-hourly-demo-{kind}" for kind in REPORT_KINDS}, keys


SCHEDULED = ["viral-hourly", "viral-to-object-store", "top-daily", "earthporn-weekly"]


def scheduled_deployments(prefect_server: PrefectServer) -> dict[str, dict[str, Any]]:
    """prefect.yaml's scheduled deployments as the server has them, by name."""
    deployments = prefect_server.api("POST", "/deployments/filter", json={}).json()
    wanted = [*SCHEDULED, "prune-weekly"]
    return {d["name"]: d for d in deployments if d["name"] in wanted}


def test_deployed_schedules_stay_paused_until_setup_finds_what_their_runs_need(
    prefect_server: PrefectServer, deployed: None
) -> None:
    deployments = scheduled_deployments(prefect_server)
    assert len(deployments) == 5
    # `prefect deploy --all` schedules nothing: not the hourly run without a client id, not
    # the object-store run whose out_dir names no bucket (its Variable is not set).
    for deployment in deployments.values():
        assert [schedule["active"] for schedule in deployment["schedules"]] == [False]
    scheduled_runs = prefect_server.api(
        "POST",
        "/flow_runs/filter",
        json={
            "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}},
            "deployments": {"id": {"any_": [d["id"] for d in deployments.values()]}},
        },
    ).json()
    assert scheduled_runs == []
    config = deployments["viral-to-object-store"]["parameters"]["config"]
    assert config["out_dir"] == "s3:///snapshots/viral"
    # One run at a time: an overlapping snapshot is dropped, an overlapping prune waits.
    for name, deployment in deployments.items():
        if name == "viral-hourly":  # the `deployed` fixture lifted its limit for the tests here
            continue
        assert deployment["global_concurrency_limit"]["limit"] == 1
        strategy = "ENQUEUE" if name == "prune-weekly" else "CANCEL_NEW"
        assert deployment["concurrency_options"]["collision_strategy"] == strategy
    try:
        result = prefect_server.snapshot("setup")  # the Secret block is stored already
        assert result.returncode == 0, result.stderr
        table = setup_table(result.stdout)
        resumed = ["gallery-snapshot/" + name for name in SCHEDULED if "object" not in name]
        for name in [*resumed, "gallery-prune/prune-weekly"]:
            assert table[("schedule", name)] == "resumed"
        assert table[("schedule", "gallery-snapshot/viral-to-object-store")] == (
            "paused: the Prefect Variable gallery_snapshot_bucket is not set "
            "(`prefect variable set gallery_snapshot_bucket VALUE`, then deploy again)"
        )
        actives = {
            name: [schedule["active"] for schedule in deployment["schedules"]]
            for name, deployment in scheduled_deployments(prefect_server).items()
        }
        assert actives == {name: [name != "viral-to-object-store"] for name in actives}
        again = setup_table(prefect_server.snapshot("setup").stdout)
        assert again[("schedule", "gallery-snapshot/viral-hourly")] == "active"
        # The Variable set after the deploy: the deployed out_dir still names no bucket.
        prefect_server.prefect("variable", "set", "gallery_snapshot_bucket", "b").check_returncode()
        late = setup_table(prefect_server.snapshot("setup").stdout)
        assert late[("schedule", "gallery-snapshot/viral-to-object-store")].startswith(
            "paused: its parameters do not validate, deploy it again: config.out_dir: s3:///"
        )
    finally:  # other tests run these deployments by hand: no scheduled runs among theirs
        for deployment in scheduled_deployments(prefect_server).values():
            for schedule in deployment["schedules"]:
                prefect_server.api(
                    "PATCH",
                    f"/deployments/{deployment['id']}/schedules/{schedule['id']}",
                    json={"active": False},
                )
        prefect_server.prefect("variable", "unset", "gallery_snapshot_bucket")


def heartbeats_of(prefect_server: PrefectServer, flow_run_id: str) -> list[dict[str, Any]]:
    """The flow run's heartbeat events, once there is one."""
    about = {"resource": {"id": [f"prefect.flow-run.{flow_run_id}"]}}
    return prefect_server.events_until("prefect.flow-run.heartbeat", about)


def test_job_variables_cannot_lift_the_workers_limits_or_run_a_command(
    prefect_server: PrefectServer, deployed: None, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"  # neither under the worker's home nor an allowed root
    marker = tmp_path / "marker"
    with DemoGallery() as gallery:
        config = {
            "source": {"api_url": gallery.api_url, "pages": 1},
            "allowed_hosts": [gallery.image_host],
            "out_dir": str(outside),
        }
        lifted = {
            "GALLERY_SNAPSHOT_API_HOSTS": gallery.base_url,
            "GALLERY_SNAPSHOT_OUT_ROOTS": str(outside),
        }
        with worker(prefect_server, tmp_path):  # trusts no API but Imgur's
            attempts = [
                prefect_server.prefect(
                    "deployment",
                    "run",
                    "gallery-snapshot/viral-hourly",
                    "--param",
                    f"config={json.dumps(config)}",
                    "--job-variable",
                    variable,
                    timeout=600,
                )
                for variable in [f"env={json.dumps(lifted)}", f"command=touch {marker}"]
            ]
            # The worker is up, and still runs what a run may start: the demo, heartbeats on.
            demo = run_deployment(prefect_server, "demo", {"demo_gallery": True}, "--watch")
        for attempt, name in zip(attempts, ["env", "command"], strict=True):
            output = attempt.stdout + attempt.stderr
            assert attempt.returncode != 0, output
            assert f"'{name}' was unexpected" in output, output
            assert "Traceback" not in output, output
        assert gallery.state.requests == []  # the client id went nowhere
    assert not outside.exists() and not marker.exists()
    assert demo["state_type"] == "COMPLETED", (tmp_path / "worker.log").read_text()
    assert heartbeats_of(prefect_server, demo["id"])


def task_run_states(
    prefect_server: PrefectServer,
    flow_run_id: str,
    but: Collection[str] = (),
) -> dict[str, str]:
    """{task run name: state name} of the flow run's task runs whose ids are not in ``but``
    (a retry's task runs are new ones, named as the first attempt's)."""
    return {
        task_run["name"]: task_run["state"]["name"]
        for task_run in task_runs_of(prefect_server, flow_run_id)
        if task_run["id"] not in but and task_run["state"] is not None
    }


def validated(prefect_server: PrefectServer, flow_run_id: str) -> set[str]:
    """The names of the flow run's validations that have completed."""
    states = task_run_states(prefect_server, flow_run_id)
    return {
        name
        for name, state in states.items()
        if name.startswith("validate_images[") and state == "Completed"
    }


def test_a_run_retried_after_its_worker_was_killed_shows_completed_batches_cached(
    prefect_server: PrefectServer, deployed: None, tmp_path: Path
) -> None:
    out = tmp_path / "gallery-snapshot" / "out"  # out_dir "out" on the worker, whose HOME this is
    log = tmp_path / "worker.log"
    images, workers = 24, 3
    sizes = plan_batches(images, runner="threads", workers=workers, cpus=1).sizes
    last = f"validate_images[{images - sizes[-1] + 1}-{images}]"
    # The last batch's downloads hang (one byte every 5 s) until the kill: every other batch
    # completes first, and no image of it is whole when the machine dies.
    hanging = {f"/B{n:07d}.jpg" for n in range(images - sizes[-1], images)}
    with DemoGallery(bulk_catalogue(images, kilobytes=5)) as gallery:
        for path in hanging:
            gallery.state.faults[path] = ["trickle=5"]  # the first request only
        config = config_for(gallery, workers=workers)
        with worker(prefect_server, tmp_path, gallery) as process:
            run = run_deployment(prefect_server, "viral-hourly", config)
            deadline = time.monotonic() + 300  # a hang bound
            while not (
                len(validations := validated(prefect_server, run["id"])) == len(sizes) - 1
                and all(gallery.state.requests_for(path) for path in hanging)
            ):
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.5)
            # The machine dies: the worker's process group, and the flow run's.
            for pid in [process.pid, *descendants(process.pid)]:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(os.getpgid(pid), signal.SIGKILL)
            process.wait(timeout=30)
        first_attempt = {task_run["id"] for task_run in task_runs_of(prefect_server, run["id"])}
        crash_deadline = time.monotonic() + CRASH_DEADLINE
        while prefect_server.api("GET", f"/flow_runs/{run['id']}").json()["state_type"] != (
            "CRASHED"
        ):
            assert time.monotonic() < crash_deadline, "the zombie automation did not crash it"
            time.sleep(2)
        # The machine is back; the run is retried as the UI's Retry does.
        with worker(prefect_server, tmp_path, gallery):
            prefect_server.api(
                "POST",
                f"/flow_runs/{run['id']}/set_state",
                json={"state": {"type": "SCHEDULED", "name": "AwaitingRetry"}, "force": True},
            )
            retried = wait_until_final(prefect_server, run["id"], log)
        requests = collections.Counter(path for path, _ in gallery.state.requests)
    assert retried["state_type"] == "COMPLETED", log.read_text()
    assert retried["run_count"] == 2
    retry = task_run_states(prefect_server, run["id"], but=first_attempt)
    assert {retry[name] for name in validations} == {"Cached"}, retry
    assert retry[last] == "Completed", retry
    assert {name.rsplit("-", 1)[0] for name, state in retry.items() if state == "Cached"} >= {
        "fetch_links",
        "filter_links",
    }, retry
    # The listing, once; every image the first attempt had whole, once; only those whose
    # download the kill cut, twice.
    assert {count for path, count in requests.items() if path.startswith("/3/")} == {1}
    assert {path: count for path, count in requests.items() if count > 1} == dict.fromkeys(
        hanging, 2
    ), requests
    [manifest] = manifests(out)
    assert manifest["counts"]["downloaded"] == images
