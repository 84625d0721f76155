"""A real ``prefect server start`` on loopback for the end-to-end tests, and CLI helpers."""

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

import pytest
import requests

from deployments.prefect_env import PROCESS_ENV
from gallery_snapshot.demo_gallery import DemoGallery
from tests.support.manifests import read_document

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# A CLI run without PREFECT_API_URL starts the local server on PREFECT_SERVER_API_PORT: never
# the default 4200, where it would find (and write to) the user's own server.
os.environ["PREFECT_SERVER_API_PORT"] = str(free_port())


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


def manifests(out: Path) -> list[dict[str, Any]]:
    """The manifests of every snapshot in ``out``, oldest first."""
    return [read_document(path) for path in sorted((out / "snapshots").glob("*/manifest.json"))]


def run_args(gallery: DemoGallery, out: Path | str, *extra: str) -> list[str]:
    """``gallery-snapshot run`` arguments that snapshot ``gallery`` as if it were Imgur, into
    the folder or object-store URL ``out``."""
    return [
        "run",
        "--api-url",
        gallery.api_url,
        "--allow-host",
        gallery.image_host,
        "--out",
        str(out),
        *extra,
    ]


def run(
    argv: list[str], *, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    with running_server(tmp_path_factory.mktemp("prefect-server-home")) as server:
        yield server


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


# -- issue 11: a real S3-compatible server and a real Dask cluster ---------------------------
# (imports kept here, next to the fixtures that use them, so the code above stays unchanged)

import uuid  # noqa: E402
from collections.abc import Mapping  # noqa: E402

from tests.support.dask_cluster import DaskCluster  # noqa: E402
from tests.support.s3_server import S3Server  # noqa: E402


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's standalone S3 server on loopback, authentication on (see tests/support/s3_server.py);
    its access log is ``<tmp>/moto.log``."""
    with S3Server(tmp_path_factory.mktemp("s3-server") / "moto.log") as server:
        yield server


@dataclass(frozen=True)
class S3Bucket:
    """A fresh bucket of ``server``; ``url`` is the ``--out`` value ``s3://<name>/snapshots`` and
    ``env`` the valid credentials (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
    ``AWS_ENDPOINT_URL``, ``AWS_REGION``) to add to a CLI run's environment."""

    name: str
    url: str
    env: dict[str, str]
    server: S3Server

    @property
    def prefix(self) -> str:
        return self.url.removeprefix(f"s3://{self.name}/")

    def objects(self, prefix: str = "") -> dict[str, int]:
        """key -> size of every object of this bucket under ``prefix``."""
        return self.server.objects(self.name, prefix)

    def requests(self, status: int | None = None) -> list[tuple[str, str]]:
        """``(method, path)`` of every request made to this bucket so far (see S3Server)."""
        return self.server.requests(bucket=self.name, status=status)


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> S3Bucket:
    """A new, empty bucket for this test on the session's S3 server."""
    name = f"test-{uuid.uuid4().hex[:16]}"
    s3_server.create_bucket(name)
    return S3Bucket(name=name, url=f"s3://{name}/snapshots", env=s3_server.env(), server=s3_server)


DaskClusterFactory = Callable[..., DaskCluster]


@pytest.fixture
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskClusterFactory]:
    """A factory: ``dask_cluster(env={...}, workers=2, nthreads=2)`` starts a real scheduler and
    workers (see tests/support/dask_cluster.py), returns the running ``DaskCluster`` once all its
    workers are connected, and stops every cluster it started when the test ends, pass or fail."""
    started: list[DaskCluster] = []

    def start(
        env: Mapping[str, str] | None = None, *, workers: int = 2, nthreads: int = 2
    ) -> DaskCluster:
        cluster = DaskCluster(
            tmp_path_factory.mktemp("dask-cluster"), workers=workers, nthreads=nthreads, env=env
        )
        started.append(cluster)
        cluster.__enter__()
        return cluster

    try:
        yield start
    finally:
        for cluster in started:
            cluster.stop()
