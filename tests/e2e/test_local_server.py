"""Runs without PREFECT_API_URL: the CLI starts this user's local Prefect server in the
background once, every later run (and every worker process of the processes and Dask runners)
reports to it, and `gallery-snapshot server` manages it."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from gallery_snapshot.demo_gallery import DemoGallery
from tests.support.demo import DEMO_COUNTS
from tests.support.prefect_server import BIN, PrefectServer, free_port, run
from tests.support.snapshot_runs import manifests, run_args

RUN_PAGE = re.compile(r"^run page: (http://127\.0\.0\.1:\d+)/runs/flow-run/([0-9a-f-]{36})$", re.M)
STARTED = "started a local Prefect server in the background"


class LocalCli:
    def __init__(self, home: Path, port: int) -> None:
        self.port = port
        self.api_url = f"http://127.0.0.1:{port}/api"
        self.env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("PREFECT_API_URL", "PREFECT_UI_API_URL")
        }
        self.env.update(PREFECT_HOME=str(home), PREFECT_SERVER_API_PORT=str(port))

    def with_env(self, **extra: str) -> LocalCli:
        other = LocalCli(Path(self.env["PREFECT_HOME"]), self.port)
        other.env.update(extra)
        return other

    def __call__(self, *args: str) -> Any:
        return run([str(BIN / "gallery-snapshot"), *args], env=self.env, timeout=600)

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = requests.request(method, f"{self.api_url}{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCli]:
    cli = LocalCli(tmp_path_factory.mktemp("user-prefect-home"), free_port())
    try:
        yield cli
    finally:
        cli("server", "stop")


def task_run_names(local: LocalCli, flow_run_id: str) -> set[str]:
    runs = local.api(
        "POST", "/task_runs/filter", json={"flow_runs": {"id": {"any_": [flow_run_id]}}}
    )
    return {run["name"] for run in runs}


def test_first_run_starts_the_local_server_and_later_runs_reuse_it(
    local: LocalCli, tmp_path: Path
) -> None:
    out = tmp_path / "demo"
    first = local("demo", "--out", str(out))
    assert first.returncode == 0, first.stderr
    assert first.stderr.count(STARTED) == 1
    assert f"UI at http://127.0.0.1:{local.port}" in first.stderr
    [(ui, first_id)] = RUN_PAGE.findall(first.stdout)
    assert ui == f"http://127.0.0.1:{local.port}"
    server_pid = (Path(local.env["PREFECT_HOME"]) / "server.pid").read_text()

    second = local("demo", "--out", str(out))
    assert second.returncode == 0, second.stderr
    assert STARTED not in second.stderr  # no server start: the same one serves
    assert "temporary server" not in second.stderr + second.stdout
    [(_, second_id)] = RUN_PAGE.findall(second.stdout)
    assert (Path(local.env["PREFECT_HOME"]) / "server.pid").read_text() == server_pid
    # Both runs stay on the server, with unique names and batch-named task runs.
    runs = {run["id"]: run for run in local.api("POST", "/flow_runs/filter", json={})}
    assert {first_id, second_id} <= set(runs)
    assert runs[first_id]["name"] != runs[second_id]["name"]
    assert runs[second_id]["state_type"] == "COMPLETED"
    assert any(name.startswith("download_images[1-") for name in task_run_names(local, second_id))

    status = local("server", "status")
    assert status.returncode == 0 and f"running: UI at {ui}" in status.stdout


@pytest.mark.parametrize("runner", ["processes", "dask"])
def test_worker_processes_report_to_the_local_server(
    local: LocalCli, tmp_path: Path, runner: str
) -> None:
    out = tmp_path / runner
    result = local("demo", "--out", str(out), "--runner", runner, "--workers", "4")
    assert result.returncode == 0, result.stderr
    assert "temporary server" not in result.stderr + result.stdout
    assert STARTED not in result.stderr
    [manifest] = manifests(out)
    assert manifest["counts"] == DEMO_COUNTS
    [(_, flow_run_id)] = RUN_PAGE.findall(result.stdout)
    # The batches ran in worker processes; their task runs are on this server, so the
    # workers reported here rather than to temporary servers of their own.
    names = task_run_names(local, flow_run_id)
    assert any(name.startswith("download_images[") for name in names), names
    assert any(name.startswith("validate_images[") for name in names), names
    # Dask's INFO chatter is off by default.
    assert not re.search(r"\| INFO +\| distributed\.", result.stderr)


def test_credits_and_missing_rate_limit_are_visible_at_default_levels(
    local: LocalCli, tmp_path: Path
) -> None:
    with DemoGallery() as gallery:
        result = local.with_env(IMGUR_CLIENT_ID=gallery.client_id)(
            *run_args(gallery, tmp_path / "out", "--pages", "3")
        )
    assert result.returncode == 0, result.stderr
    assert "API credits after listing: client 1249" in result.stderr
    assert "no global rate limit 'imgur-api' on this server" in result.stderr


def prefect(local: LocalCli, *args: str) -> Any:
    """Prefect's own CLI with this user's environment."""
    return run([str(BIN / "prefect"), *args], env=local.env, timeout=120)


def test_setup_points_prefects_own_cli_at_the_local_server(local: LocalCli) -> None:
    before = prefect(local, "config", "view")
    result = local("setup")
    assert result.returncode == 0, result.stderr
    # The active profile, which every other project's `prefect` uses, is left as it was: it
    # names no server that `gallery-snapshot server stop` may take away.
    after = prefect(local, "config", "view")
    assert after.returncode == 0 and local.api_url not in after.stdout
    assert after.stdout == before.stdout
    assert setup_rows(result.stdout)[("prefect profile", "gallery-snapshot")] == "created"
    assert "`prefect --profile gallery-snapshot deploy --all`" in result.stdout
    # `prefect deploy` and `prefect worker start` find the server through the project's profile.
    pool = prefect(
        local, "--profile", "gallery-snapshot", "work-pool", "inspect", "gallery-snapshot"
    )
    assert pool.returncode == 0, pool.stdout + pool.stderr
    assert "PREFECT_FLOWS_HEARTBEAT_FREQUENCY" in pool.stdout
    assert setup_rows(local("setup").stdout)[("prefect profile", "gallery-snapshot")] == "found"
    # Runs still find the server, and start it if it stopped.
    local("server", "stop")
    assert prefect(local, "config", "view").stdout == before.stdout
    again = local("demo", "--out", str(Path(local.env["PREFECT_HOME"]) / "demo"))
    assert again.returncode == 0, again.stderr
    assert again.stderr.count(STARTED) == 1


def setup_rows(output: str) -> dict[tuple[str, str], str]:
    """`gallery-snapshot setup`'s table as {(what, name): result}."""
    rows = [re.split(r"\s{2,}", line.strip()) for line in output.splitlines()[1:]]
    return {(row[0], row[1]): row[2] for row in rows if len(row) == 3}


def test_a_run_finds_the_client_id_setup_stored_on_the_local_server(
    local: LocalCli, tmp_path: Path
) -> None:
    with DemoGallery() as gallery:
        stored = local.with_env(IMGUR_CLIENT_ID=gallery.client_id)("setup")
        assert stored.returncode == 0, stored.stderr
        assert setup_rows(stored.stdout)[("secret block", "imgur-client-id")] == "created"
        # No IMGUR_CLIENT_ID and nothing exported: the Secret block on the server setup
        # configured is where the run looks.
        result = local(*run_args(gallery, tmp_path / "out", "--pages", "3"))
    assert result.returncode == 0, result.stderr
    [manifest] = manifests(tmp_path / "out")
    assert manifest["counts"]["downloaded"] == DEMO_COUNTS["downloaded"]


def test_server_stop_then_status(local: LocalCli) -> None:
    stopped = local("server", "stop")
    assert stopped.returncode == 0 and stopped.stdout.strip() == "stopped"
    status = local("server", "status")
    assert status.returncode == 1 and "not running" in status.stdout
    assert local("server", "stop").stdout.strip() == "not running"


def test_a_server_someone_else_runs_on_the_port_is_never_adopted(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    assert prefect_server.process is not None
    port = int(prefect_server.api_url.rsplit(":", 1)[1].removesuffix("/api"))
    other = LocalCli(tmp_path / "home", port)  # this user: another PREFECT_HOME, same port
    counts = {
        kind: len(prefect_server.api("POST", f"/{kind}/filter", json={}).json())
        for kind in ("flow_runs", "work_pools", "automations", "block_documents", "variables")
    }
    holder = (
        f"port {port} is taken by a Prefect server gallery-snapshot did not start "
        f"(pid {prefect_server.process.pid}, PREFECT_HOME {prefect_server.home})"
    )
    status = other("server", "status")
    assert status.returncode == 1 and status.stdout == f"not running: {holder}\n"
    stop = other("server", "stop")
    assert stop.returncode == 1
    assert stop.stderr == f"gallery-snapshot: error: not stopped: {holder}\n"
    assert prefect_server.process.poll() is None and prefect_server.api("GET", "/health").ok
    for command in (["demo", "--out", str(tmp_path / "out")], ["setup"]):
        result = other(*command)
        assert result.returncode == 1, result.stderr
        assert result.stderr.startswith(f"gallery-snapshot: error: {holder}: not using it.")
        assert result.stderr.count("\n") == 1
    # Nothing went into that server: no run, no work pool, automation, block or variable.
    assert counts == {
        kind: len(prefect_server.api("POST", f"/{kind}/filter", json={}).json()) for kind in counts
    }
    assert not list(tmp_path.glob("out/snapshots/*"))


@pytest.mark.parametrize("command", [["setup"], ["demo"]])
def test_an_unreachable_prefect_api_is_one_line_and_exit_1(
    tmp_path: Path, command: list[str]
) -> None:
    env = {**os.environ, "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api"}
    env["PREFECT_HOME"] = str(tmp_path / "home")
    result = run([str(BIN / "gallery-snapshot"), *command], env=env, timeout=120)
    assert result.returncode == 1
    assert result.stderr.startswith("gallery-snapshot: error: cannot reach the Prefect API at")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
