"""The path users take: a work pool, `prefect deploy --all`, a worker, `prefect deployment run`,
and the runs, task runs and artifacts as the server records them."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import BIN, PrefectServer

REPO = Path(__file__).resolve().parents[2]
STEPS = {
    "fetch_links",
    "filter_links",
    "download_images",
    "validate_images",
    "record_manifest",
    "publish_report",
}


@pytest.fixture(scope="module")
def deployed(
    prefect_server: PrefectServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """The pool, every deployment of prefect.yaml, the shared API rate limit, and a worker."""
    logs = tmp_path_factory.mktemp("worker")
    for argv in (
        ["work-pool", "create", "gallery-snapshot", "--type", "process"],
        [
            "global-concurrency-limit",
            "create",
            "imgur-api",
            "--limit",
            "50",
            "--slot-decay-per-second",
            "0.14",
        ],
    ):
        result = prefect_server.prefect(*argv)
        assert result.returncode == 0, result.stdout + result.stderr
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
    with open(logs / "worker.log", "w") as log:
        worker = subprocess.Popen(
            [str(BIN / "prefect"), "worker", "start", "--pool", "gallery-snapshot"],
            cwd=logs,
            env={**prefect_server.env, "GALLERY_SNAPSHOT_HOME": str(REPO)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield logs
        finally:
            worker.terminate()
            worker.wait(timeout=60)


def run_demo(prefect_server: PrefectServer, out: Path) -> dict[str, Any]:
    """`prefect deployment run gallery-snapshot/demo --watch`; the flow run as the API has it."""
    config = {"demo_gallery": True, "source": {"pages": 3}, "out_dir": str(out)}
    result = prefect_server.prefect(
        "deployment",
        "run",
        "gallery-snapshot/demo",
        "--param",
        f"config={json.dumps(config)}",
        "--watch",
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    runs = prefect_server.api(
        "POST",
        "/flow_runs/filter",
        json={"deployments": {"name": {"any_": ["demo"]}}, "sort": "START_TIME_DESC", "limit": 1},
    ).json()
    return runs[0]  # type: ignore[no-any-return]


def artifacts_of(prefect_server: PrefectServer, flow_run_id: str) -> dict[str, dict[str, Any]]:
    artifacts = prefect_server.api(
        "POST", "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}}
    ).json()
    return {artifact["key"]: artifact for artifact in artifacts}


def test_deployment_runs_leave_task_runs_artifacts_and_a_history(
    prefect_server: PrefectServer, deployed: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    first = run_demo(prefect_server, out)
    assert first["state_type"] == "COMPLETED"
    assert first["name"].startswith("demo-")
    task_runs = prefect_server.api(
        "POST", "/task_runs/filter", json={"flow_runs": {"id": {"any_": [first["id"]]}}}
    ).json()
    names = {run["name"].rsplit("-", 1)[0] for run in task_runs}
    assert names >= STEPS, names
    assert all(run["state_type"] == "COMPLETED" for run in task_runs)

    artifacts = artifacts_of(prefect_server, first["id"])
    assert {"demo-summary", "demo-report", "demo-contact-sheet", "demo-progress"} <= set(artifacts)
    [summary] = json.loads(artifacts["demo-summary"]["data"])
    assert summary["downloaded"] == 14 and summary["invalid"] == 2 and summary["images_per_second"]
    assert "| gone | [Deleted]" in artifacts["demo-report"]["data"]
    assert "data:image/jpeg;base64," in artifacts["demo-contact-sheet"]["data"]
    assert artifacts["demo-progress"]["data"] == 100.0
    [snapshot] = list((out / "snapshots").iterdir())
    assert (snapshot / "contact-sheet.jpg").is_file()

    # A second scheduled-style run reuses every stored image and says what changed.
    second = run_demo(prefect_server, out)
    assert second["state_type"] == "COMPLETED"
    again = artifacts_of(prefect_server, second["id"])
    [summary] = json.loads(again["demo-summary"]["data"])
    assert (summary["downloaded"], summary["reused"]) == (0, 14)
    report = again["demo-report"]["data"]
    assert f"## Changes since {snapshot.name}" in report
    assert "- new: 0" in report and "- dropped out: 0" in report
    # The Artifacts page keeps the history under one key per deployment.
    history = prefect_server.api(
        "POST", "/artifacts/filter", json={"artifacts": {"key": {"any_": ["demo-summary"]}}}
    ).json()
    assert len(history) >= 2
