"""The gallery-snapshot CLI end to end: real processes, a real Prefect server, real HTTP to the
demo gallery, real files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from gallery_snapshot.demo_gallery import DemoGallery
from tests.support.demo import DEMO_COUNTS
from tests.support.prefect_server import PrefectServer
from tests.support.snapshot_runs import manifests, run_args


def latest_run_and_its_logs(server: PrefectServer) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The flow run that started last on ``server``, and its logs."""
    [run] = server.api(
        "POST", "/flow_runs/filter", json={"sort": "START_TIME_DESC", "limit": 1}
    ).json()
    logs = server.api(
        "POST", "/logs/filter", json={"logs": {"flow_run_id": {"any_": [run["id"]]}}, "limit": 200}
    ).json()
    return run, logs


def test_demo_then_a_rerun_that_reuses_everything(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    out = tmp_path / "demo"
    first = prefect_server.snapshot("demo", "--out", str(out))
    assert first.returncode == 0, first.stderr
    assert "downloaded      14" in first.stdout and "manifest: " in first.stdout
    second = prefect_server.snapshot("demo", "--out", str(out), "--runner", "processes")
    assert second.returncode == 0, second.stderr
    assert "reused          14" in second.stdout
    first_manifest, second_manifest = manifests(out)
    assert first_manifest["counts"] == DEMO_COUNTS
    assert second_manifest["counts"] == {**DEMO_COUNTS, "downloaded": 0, "reused": 14}
    for image in first_manifest["images"]:
        if image["status"] == "downloaded":
            assert (out / image["path"]).is_file()
    # Prefect's own CLI sees both runs, completed.
    listing = prefect_server.prefect(
        "flow-run",
        "ls",
        "--flow-name",
        "gallery-snapshot",
        "--state-type",
        "COMPLETED",
        "-o",
        "json",
    )
    assert listing.returncode == 0, listing.stderr
    names = [run["name"] for run in json.loads(listing.stdout)]
    assert sum(name.startswith("demo-") for name in names) >= 2


def test_run_against_an_imgur_compatible_api(prefect_server: PrefectServer, tmp_path: Path) -> None:
    out = tmp_path / "run"
    with DemoGallery() as gallery:
        result = prefect_server.snapshot(
            *run_args(gallery, out, "--pages", "3", "--formats", "jpeg,png", "--workers", "4"),
            env={"IMGUR_CLIENT_ID": gallery.client_id},
        )
    assert result.returncode == 0, result.stderr
    [manifest] = manifests(out)
    assert (
        manifest["source"]["kind"] == "gallery" and manifest["source"]["api_url"] == gallery.api_url
    )
    # PNGs are wanted now: two more downloads, two fewer skips.
    assert manifest["counts"] == {**DEMO_COUNTS, "selected": 21, "downloaded": 16, "skipped": 4}
    assert gallery.client_id not in json.dumps(manifest)
    # The command exits without tearing the interpreter down, after its run's last log lines
    # reached the server: no wait here.
    run, logs = latest_run_and_its_logs(prefect_server)
    messages = [log["message"] for log in logs]
    assert any(
        message.startswith("snapshot ") and " recorded in " in message for message in messages
    )
    assert any("Finished in state Completed" in message for message in messages), messages
    # So have the task runs' final states (they travel as events, drained at thread exit).
    task_runs = prefect_server.api(
        "POST", "/task_runs/filter", json={"flow_runs": {"id": {"any_": [run["id"]]}}}
    ).json()
    assert {task["name"].split("-")[0] for task in task_runs} >= {
        "record_manifest",
        "publish_report",
    }
    assert {task["state_type"] for task in task_runs} == {"COMPLETED"}, task_runs


def test_rejected_client_id_is_one_line_and_exit_1(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    with DemoGallery() as gallery:
        result = prefect_server.snapshot(
            *run_args(gallery, tmp_path / "out"), env={"IMGUR_CLIENT_ID": "wrong-secret-id"}
        )
        assert gallery.state.requests_for("/3/gallery/hot/viral/day/0") == [403]
    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line == (
        "gallery-snapshot: error: the API rejected the client id (Invalid client_id): "
        "check IMGUR_CLIENT_ID"
    )
    assert "Traceback" not in result.stderr + result.stdout
    assert "wrong-secret-id" not in result.stderr + result.stdout
    # Nor in what the server keeps: the run's parameters and its logs.
    run, logs = latest_run_and_its_logs(prefect_server)
    assert logs and "Invalid client_id" in json.dumps(logs)
    assert "wrong-secret-id" not in json.dumps(logs) + json.dumps(run["parameters"])


def test_unwritable_output_folder_is_a_clear_error(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = prefect_server.snapshot("demo", "--out", str(blocker / "out"))
    assert result.returncode == 1
    assert "cannot write to the output folder" in result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr
    assert blocker.read_text() == "not a folder"


def test_urls_file_source(prefect_server: PrefectServer, tmp_path: Path) -> None:
    out = tmp_path / "urls"
    urls = tmp_path / "urls.txt"
    with DemoGallery() as gallery:
        urls.write_text(
            f"{gallery.base_url}/Jpg001.jpg\n{gallery.base_url}/Jpg002.jpg\n"
            f"{gallery.base_url}/Jpg001.jpg\nhttps://elsewhere.example/x.jpg\n"
        )
        result = prefect_server.snapshot(
            "run", "--urls-file", str(urls), "--allow-host", gallery.image_host, "--out", str(out)
        )
    assert result.returncode == 0, result.stderr
    [manifest] = manifests(out)
    assert manifest["counts"]["downloaded"] == 2
    assert sorted(item["reason"] for item in manifest["skipped"]) == [
        f"duplicate of {gallery.base_url}/Jpg001.jpg",
        "host elsewhere.example is not allowed",
    ]


def test_api_requests_take_slots_of_the_shared_rate_limit(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    # A slow decay, so the slots this run takes are still visible when it ends.
    created = prefect_server.prefect(
        "global-concurrency-limit",
        "create",
        "imgur-api",
        "--limit",
        "100",
        "--slot-decay-per-second",
        "0.01",
    )
    assert created.returncode == 0, created.stdout + created.stderr
    try:
        with DemoGallery() as gallery:
            result = prefect_server.snapshot(
                *run_args(gallery, tmp_path / "out", "--pages", "3"),
                env={"IMGUR_CLIENT_ID": gallery.client_id},
            )
            api_requests = [path for path, _ in gallery.state.requests if path.startswith("/3/")]
        assert result.returncode == 0, result.stderr
        limit = prefect_server.api("GET", "/v2/concurrency_limits/imgur-api").json()
        # Four requests (three pages, one album) took four slots; decay returns ~0.01 a second.
        assert len(api_requests) == 4
        assert 2 <= limit["active_slots"] <= 4
    finally:
        prefect_server.prefect("global-concurrency-limit", "delete", "imgur-api")


def test_dask_runner_on_a_local_multi_process_cluster(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    out = tmp_path / "dask"
    result = prefect_server.snapshot(
        "demo", "--out", str(out), "--runner", "dask", "--workers", "4"
    )
    assert result.returncode == 0, result.stderr
    [manifest] = manifests(out)
    assert manifest["counts"] == DEMO_COUNTS


def test_a_missing_client_id_with_a_server_is_found_before_the_flow(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    block = "/block_types/slug/secret/block_documents/name/imgur-client-id"
    if requests.get(f"{prefect_server.api_url}{block}", timeout=30).ok:
        pytest.skip("an earlier test stored the Secret block imgur-client-id")
    runs_before = prefect_server.api("POST", "/flow_runs/count", json={}).json()
    with DemoGallery() as gallery:
        result = prefect_server.snapshot(*run_args(gallery, tmp_path / "out"))
        assert gallery.state.requests == []
    assert result.returncode == 2
    assert result.stderr == (
        f"gallery-snapshot: error: IMGUR_CLIENT_ID is not set and the Prefect server at "
        f"{prefect_server.api_url} has no Secret block 'imgur-client-id': export your Imgur "
        "client id, or run `gallery-snapshot setup` with it (see README)\n"
    )
    assert prefect_server.api("POST", "/flow_runs/count", json={}).json() == runs_before
