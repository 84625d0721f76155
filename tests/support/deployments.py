"""Deployments on a real Prefect server, as the end-to-end tests drive them: `prefect deployment
run`, then the flow run, its logs, artifacts and task runs as the server records them."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tests.support.prefect_server import PrefectServer
from tests.support.processes import start_time

REPO = Path(__file__).resolve().parents[2]
UNFINISHED = {"SCHEDULED", "PENDING", "RUNNING", "CANCELLING"}


def setup_table(output: str) -> dict[tuple[str, str], str]:
    """`gallery-snapshot setup`'s table as {(what, name): result}."""
    rows = [re.split(r"\s{2,}", line.strip()) for line in output.splitlines()[1:]]
    return {(row[0], row[1]): row[2] for row in rows if len(row) == 3}


def run_deployment(
    prefect_server: PrefectServer, name: str, config: dict[str, Any], *extra: str
) -> dict[str, Any]:
    """`prefect deployment run gallery-snapshot/NAME`; the flow run as the API has it."""
    result = prefect_server.prefect(
        "deployment",
        "run",
        f"gallery-snapshot/{name}",
        "--param",
        f"config={json.dumps(config)}",
        *extra,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Its own id: the deployments' schedules have created runs of their own meanwhile.
    [flow_run_id] = re.findall(r"UUID: ([0-9a-f-]{36})", result.stdout)
    return prefect_server.api("GET", f"/flow_runs/{flow_run_id}").json()  # type: ignore[no-any-return]


def finished(prefect_server: PrefectServer, run: dict[str, Any], log: Path) -> dict[str, Any]:
    """The flow run once it has ended; the worker's ``log`` when it does not."""
    deadline = time.monotonic() + 300  # not a speed check: a hang bound
    while run["state_type"] in UNFINISHED:
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(1)
        run = prefect_server.api("GET", f"/flow_runs/{run['id']}").json()
    return run


def logs_of(prefect_server: PrefectServer, flow_run_id: str) -> list[dict[str, Any]]:
    """The flow run's logs, oldest first."""
    return prefect_server.api(  # type: ignore[no-any-return]
        "POST",
        "/logs/filter",
        json={"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "sort": "TIMESTAMP_ASC"},
    ).json()


def log_messages(
    prefect_server: PrefectServer, flow_run_id: str, wanted: str, processes: Iterable[int] = ()
) -> list[str]:
    """The flow run's log messages, oldest first, once one holds ``wanted`` and its
    ``processes`` have ended: a run's last logs are shipped in the background, the last on
    its way out, and may land after its final state."""
    deadline = time.monotonic() + 60  # a hang bound
    while True:
        messages = [log["message"] for log in logs_of(prefect_server, flow_run_id)]
        done = not any(map(start_time, processes)) and any(wanted in m for m in messages)
        if done or time.monotonic() > deadline:
            return messages
        time.sleep(1)


def artifacts_of(prefect_server: PrefectServer, flow_run_id: str) -> dict[str, dict[str, Any]]:
    artifacts = prefect_server.api(
        "POST", "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}}
    ).json()
    return {artifact["key"]: artifact for artifact in artifacts}


def task_runs_of(prefect_server: PrefectServer, flow_run_id: str) -> list[dict[str, Any]]:
    return prefect_server.api(  # type: ignore[no-any-return]
        "POST", "/task_runs/filter", json={"flow_runs": {"id": {"any_": [flow_run_id]}}}
    ).json()
