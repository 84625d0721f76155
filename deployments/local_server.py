"""This user's local Prefect server, for runs without ``PREFECT_API_URL``.

Without a configured API, Prefect starts a temporary server in every process that runs a flow
(8-14 s each, and the runs vanish with it). Instead, the CLI starts ``prefect server start`` once
in the background, on loopback, with its pid in Prefect's own pid file (so ``prefect server stop``
stops it too) and its log next to it under ``PREFECT_HOME``, and every later run reuses it.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests
from prefect.context import refresh_global_settings_context
from prefect.settings import get_current_settings, update_current_profile

from gallery_snapshot.errors import SnapshotError

HOST = "127.0.0.1"
PID_FILE = "server.pid"  # the name `prefect server start --background` and `stop` use
LOG_FILE = "gallery-snapshot-server.log"
START_TIMEOUT = 120.0  # a fresh database takes ~15 s on a 2-core machine, more under load


@dataclass(frozen=True)
class LocalServer:
    """The server this user's Prefect settings point at: ``PREFECT_HOME`` and the port."""

    home: Path
    port: int

    @classmethod
    def from_settings(cls) -> LocalServer:
        settings = get_current_settings()
        return cls(home=Path(settings.home), port=settings.server.api.port)

    @property
    def ui_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.ui_url}/api"

    @property
    def pid_file(self) -> Path:
        return self.home / PID_FILE

    @property
    def log_file(self) -> Path:
        return self.home / LOG_FILE

    def healthy(self) -> bool:
        return api_healthy(self.api_url)

    def pid(self) -> int | None:
        """The background server's pid, if its pid file names a live process."""
        try:
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    def start(self) -> bool:
        """Start the server unless it is up; return whether this call started it."""
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / "gallery-snapshot-server.lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two first runs at once start one server
            if self.healthy():
                return False
            self._wait_until_healthy(self._spawn() if self.pid() is None else None)
            return True

    def _spawn(self) -> subprocess.Popen[bytes]:
        prefect = Path(sys.executable).with_name("prefect")
        with open(self.log_file, "ab") as log:
            process = subprocess.Popen(
                [str(prefect), "server", "start", "--host", HOST, "--port", str(self.port)],
                env={**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives this command and its Ctrl-C
            )
        self.pid_file.write_text(str(process.pid))
        return process

    def _wait_until_healthy(self, process: subprocess.Popen[bytes] | None) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not self.healthy():
            if (process.poll() is not None) if process else self.pid() is None:
                self.pid_file.unlink(missing_ok=True)
                raise SnapshotError(
                    f"the local Prefect server did not start (is port {self.port} taken? "
                    f"set PREFECT_SERVER_API_PORT); see {self.log_file}"
                )
            if time.monotonic() > deadline:
                raise SnapshotError(
                    f"the local Prefect server is not healthy after {START_TIMEOUT:.0f} s; "
                    f"see {self.log_file}"
                )
            time.sleep(0.3)

    def stop(self) -> bool:
        """Stop the background server; return whether one was running."""
        pid = self.pid()
        self.pid_file.unlink(missing_ok=True)
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        return True


def api_healthy(api_url: str) -> bool:
    try:
        return requests.get(f"{api_url.rstrip('/')}/health", timeout=5).ok
    except requests.RequestException:
        return False


def configured_api_url() -> str | None:
    url = get_current_settings().api.url
    return str(url) if url else None


def use_prefect_api(*, remember: bool = False) -> str:
    """The configured Prefect API, else this user's local server (started on first use and
    announced once), for this process and every process it starts (process-pool and Dask
    workers inherit the environment); returns the UI's address. With ``remember``, the local
    server also goes into the active Prefect profile, so Prefect's own CLI (``prefect deploy``,
    ``prefect worker start``) uses it with nothing exported."""
    server = LocalServer.from_settings()
    url = configured_api_url()
    if url and url != server.api_url:
        if not api_healthy(url):
            raise SnapshotError(f"cannot reach the Prefect API at {url} (PREFECT_API_URL)")
        return str(get_current_settings().ui_url or url.removesuffix("/api"))
    if server.start():
        print(
            f"started a local Prefect server in the background: UI at {server.ui_url} "
            "(`gallery-snapshot server stop` stops it)",
            file=sys.stderr,
        )
    if url is None:
        if remember:
            profile = update_current_profile({"PREFECT_API_URL": server.api_url})
            print(
                f"Prefect profile {profile.name!r} now uses {server.api_url} "
                "(prefect deploy, prefect worker start)",
                file=sys.stderr,
            )
        os.environ["PREFECT_API_URL"] = server.api_url
        # Prefect read its settings at import: make every thread and context see the new
        # API (a stale one would start a temporary server of its own).
        refresh_global_settings_context()
    return server.ui_url
