"""This user's local Prefect server, for runs without ``PREFECT_API_URL``.

Without a configured API, Prefect starts a temporary server in every process that runs a flow
(seconds each, and the runs vanish with it). Instead, the CLI starts ``prefect server start`` once
in the background, on loopback, with its pid in Prefect's own pid file (so ``prefect server stop``
stops it too) and its log next to it under ``PREFECT_HOME``, and every later run reuses it.

The server is this user's only while the process that pid file names is the one listening on
the port: a server someone else runs there (another user, another ``PREFECT_HOME``) is named
and refused, never adopted. ``setup`` records the server in a Prefect profile of the project's
own, so Prefect's CLI finds it when asked to (``prefect --profile gallery-snapshot ...``) and
the active profile, which other projects use, is left alone.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import requests
from prefect.context import refresh_global_settings_context
from prefect.settings import PREFECT_API_URL, Profile, get_current_settings
from prefect.settings.profiles import load_current_profile, load_profiles, save_profiles

from deployments.prefect_env import PROCESS_ENV
from gallery_snapshot.errors import SnapshotError

HOST = "127.0.0.1"
PID_FILE = "server.pid"  # the name `prefect server start --background` and `stop` use
LOG_FILE = "gallery-snapshot-server.log"
START_TIMEOUT = 120.0  # a fresh database takes a while on a small machine, more under load
PROFILE = "gallery-snapshot"  # the Prefect profile `setup` points at the local server


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
        """The pid in the pid file while it names a Prefect server (after a reboot a stale
        file may name another program, which must never be signalled)."""
        try:
            pid = int(self.pid_file.read_text().strip())
            command = " ".join(psutil.Process(pid).cmdline())
        except (OSError, ValueError, psutil.Error):
            return None
        prefect_server = "server start" in command or "prefect.server.api.server" in command
        return pid if prefect_server and "prefect" in command else None

    def listens(self, pid: int) -> bool:
        """Whether process ``pid`` holds this server's port."""
        try:
            sockets = psutil.Process(pid).net_connections(kind="tcp")
        except psutil.Error:
            return False
        return any(_listens_on(sock, self.port) for sock in sockets)

    def running(self) -> bool:
        """Whether this user's server is up: the pid file's process listens on the port and
        answers."""
        pid = self.pid()
        return pid is not None and self.listens(pid) and self.healthy()

    def other_holder(self) -> str | None:
        """What holds the port when this user's server does not (a description naming its pid
        and ``PREFECT_HOME`` when they can be read); None when the port is free or ours."""
        pid = self.pid()
        if pid is not None and self.listens(pid):
            return None
        holder = _listener_pid(self.port)
        if holder is None and not _port_open(self.port):
            return None
        what = "a Prefect server" if self.healthy() else "a program"
        details = []
        if holder is not None:
            details.append(f"pid {holder}")
            try:
                environment = psutil.Process(holder).environ()
                details.append(f"PREFECT_HOME {environment.get('PREFECT_HOME', '~/.prefect')}")
            except psutil.Error:
                pass  # another user's process
        else:
            details.append("another user's process")
        return f"{what} gallery-snapshot did not start ({', '.join(details)})"

    def refusal(self, holder: str) -> SnapshotError:
        return SnapshotError(
            f"port {self.port} is taken by {holder}: not using it. Set PREFECT_SERVER_API_PORT "
            f"to start this user's server on another port, or PREFECT_API_URL={self.api_url} "
            "to use that server on purpose"
        )

    def start(self) -> bool:
        """Start the server unless it is up; return whether this call started it."""
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / "gallery-snapshot-server.lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two first runs at once start one server
            if self.running():
                return False
            if holder := self.other_holder():
                raise self.refusal(holder)
            self._wait_until_healthy(self._spawn() if self.pid() is None else None)
            return True

    def _spawn(self) -> subprocess.Popen[bytes]:
        prefect = Path(sys.executable).with_name("prefect")
        with open(self.log_file, "ab") as log:
            process = subprocess.Popen(
                [str(prefect), "server", "start", "--host", HOST, "--port", str(self.port)],
                env={**PROCESS_ENV, **os.environ},
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
        """Stop this user's background server; return whether one was running."""
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


def _listens_on(sock: Any, port: int) -> bool:
    return bool(sock.status == psutil.CONN_LISTEN and sock.laddr and sock.laddr.port == port)


def _listener_pid(port: int) -> int | None:
    """The pid listening on ``port``, when this user may see it."""
    try:
        sockets = psutil.net_connections(kind="tcp")
    except psutil.Error:  # macOS without root
        return None
    return next((sock.pid for sock in sockets if _listens_on(sock, port) and sock.pid), None)


def _port_open(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=2).close()
    except OSError:
        return False
    return True


def api_healthy(api_url: str) -> bool:
    try:
        return requests.get(f"{api_url.rstrip('/')}/health", timeout=5).ok
    except requests.RequestException:
        return False


def configured_api_url() -> str | None:
    url = get_current_settings().api.url
    return str(url) if url else None


def profile_api_url() -> str | None:
    """The API the project's profile names, once `setup` wrote it."""
    profiles = load_profiles()
    if PROFILE not in profiles.names:
        return None
    url = profiles[PROFILE].settings.get(PREFECT_API_URL)
    return str(url) if url else None


def secrets_api_url() -> str | None:
    """Where a run looks for the client id's Secret block: PREFECT_API_URL (environment or
    active profile), else this user's local server once `setup` has recorded it."""
    server = LocalServer.from_settings()
    return configured_api_url() or (server.api_url if profile_api_url() == server.api_url else None)


def remember(server: LocalServer) -> str:
    """Point the project's profile at ``server``, leaving the active profile alone; return
    "created", "updated" or "found"."""
    profiles = load_profiles()
    if PROFILE not in profiles.names:
        outcome = "created"
        profiles.add_profile(Profile(name=PROFILE, settings={PREFECT_API_URL: server.api_url}))
    elif profile_api_url() == server.api_url:
        return "found"
    else:
        outcome = "updated"
        profiles.update_profile(PROFILE, {PREFECT_API_URL: server.api_url})
    save_profiles(profiles)
    return outcome


def stale_profile(server: LocalServer) -> str | None:
    """The active profile's name when it points at ``server`` although it is not the
    project's own (an older `setup` wrote it there): Prefect fails there once the server
    stops."""
    profile = load_current_profile()
    url = profile.settings.get(PREFECT_API_URL)
    return profile.name if profile.name != PROFILE and url == server.api_url else None


def local_server_in_use() -> LocalServer | None:
    """This user's local server when runs use it: no PREFECT_API_URL, or one from a profile
    that names the local address. An exported PREFECT_API_URL is used as it is, whoever runs
    that server."""
    server = LocalServer.from_settings()
    url = configured_api_url()
    explicit = url and (url != server.api_url or os.environ.get("PREFECT_API_URL"))
    return None if explicit else server


def use_prefect_api() -> str:
    """The configured Prefect API, else this user's local server (started on first use and
    announced once; a server someone else runs on its port is refused), for this process and
    every process it starts (process-pool and Dask workers inherit the environment); returns
    the UI's address."""
    server = local_server_in_use()
    if server is None:
        url = str(configured_api_url())
        if not api_healthy(url):
            raise SnapshotError(f"cannot reach the Prefect API at {url} (PREFECT_API_URL)")
        return str(get_current_settings().ui_url or url.removesuffix("/api"))
    if server.start():
        print(
            f"started a local Prefect server in the background: UI at {server.ui_url} "
            "(`gallery-snapshot server stop` stops it)",
            file=sys.stderr,
        )
    if configured_api_url() is None:
        os.environ["PREFECT_API_URL"] = server.api_url
        # Prefect read its settings at import: make every thread and context see the new
        # API (a stale one would start a temporary server of its own).
        refresh_global_settings_context()
    return server.ui_url
