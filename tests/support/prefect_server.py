"""A real ``prefect server start`` on loopback, for the end-to-end tests: start it, ask its API,
run Prefect's CLI and gallery-snapshot's against it."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from deployments.prefect_env import PROCESS_ENV

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PrefectServer:
    api_url: str
    env: dict[str, str]
    home: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """``prefect server start`` on this server's port and home; return once healthy."""
        port = self.api_url.rsplit(":", 1)[1].split("/")[0]
        with open(self.home / "server.log", "ab") as log:
            self.process = subprocess.Popen(
                [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", port],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(f"{self.api_url}/health", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise RuntimeError(f"prefect server did not start; see {self.home / 'server.log'}")
            time.sleep(0.5)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def prefect(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Prefect's own CLI against this server."""
        return run([str(BIN / "prefect"), *args], env=self.env, timeout=timeout)

    def snapshot(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """The gallery-snapshot CLI against this server."""
        return run([str(BIN / "gallery-snapshot"), *args], env={**self.env, **(env or {})})

    def api(self, method: str, path: str, **kwargs: object) -> requests.Response:
        """One request to this server's API, retried on 503 as Prefect's own client retries it
        (the server answers 503 while its SQLite database is busy, as it is on a loaded CI)."""
        for attempt in range(6):
            response = requests.request(method, f"{self.api_url}{path}", timeout=30, **kwargs)  # type: ignore[arg-type]
            if response.status_code != 503 or attempt == 5:
                break
            time.sleep(0.5 * 2**attempt)
        response.raise_for_status()
        return response

    def flow_run_writing_to(self, out: Path | str) -> dict[str, Any]:
        """The newest flow run whose config writes to ``out``: a run found by what it was asked
        to do, not by its start time, which other tests' runs may share or exceed."""
        runs = self.api(
            "POST", "/flow_runs/filter", json={"sort": "EXPECTED_START_TIME_DESC", "limit": 50}
        ).json()
        for flow_run in runs:
            config = flow_run["parameters"].get("config") or {}
            if config.get("out_dir") == str(out):
                return dict(flow_run)
        raise AssertionError(f"no flow run writes to {out}")

    def events_until(
        self, name: str, about: dict[str, list[str]], count: int = 1, timeout: float = 60
    ) -> list[dict[str, Any]]:
        """The events ``name`` whose resources match ``about`` (``{"resource": {"id": [...]}}``
        or ``"related"``), once there are ``count`` (events are stored in the background), or
        as they are when ``timeout`` has passed."""
        deadline = time.monotonic() + timeout
        while True:
            events = self.api(
                "POST", "/events/filter", json={"filter": {"event": {"name": [name]}, **about}}
            ).json()["events"]
            if len(events) >= count or time.monotonic() > deadline:
                return events  # type: ignore[no-any-return]
            time.sleep(1)

    def logs_until(
        self, flow_run_id: str, condition: Callable[[list[str]], bool], timeout: float = 30
    ) -> list[str]:
        """The run's log messages once ``condition`` holds of them (logs reach the server from
        a background worker, so a loaded machine may see the last ones late), or as they are
        when ``timeout`` has passed."""
        deadline = time.monotonic() + timeout
        while True:
            logs = self.api(
                "POST",
                "/logs/filter",
                json={"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 200},
            ).json()
            messages = [log["message"] for log in logs]
            if condition(messages) or time.monotonic() > deadline:
                return messages
            time.sleep(0.5)


def run(
    argv: list[str], *, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@contextlib.contextmanager
def running_server(home: Path) -> Iterator[PrefectServer]:
    """``prefect server start`` on a free port with its data in ``home``, until the end."""
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api_url,
        "PREFECT_UI_API_URL": api_url,  # the UI's own calls (it assumes port 4200 otherwise)
        **PROCESS_ENV,
        # Automations (the zombie-run one, notifications) need the triggers and actions
        # services: on by default, and on here whatever the environment says.
        "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "true",
    }
    server = PrefectServer(api_url=api_url, env=env, home=home)
    server.start()
    try:
        yield server
    finally:
        server.stop()
