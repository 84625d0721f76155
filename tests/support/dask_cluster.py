"""A real Dask cluster on loopback, laid out as separate machines would be: ``dask scheduler``
and ``dask worker`` processes, each in its own session, working directory, ``TMPDIR``, ``HOME``,
``PREFECT_HOME`` and Dask local directory, sharing no local folder.

Layout under ``root``::

    scheduler/          cwd, scheduler.log, scheduler.json (read by the test process only)
    worker-0/           cwd, worker.log; tmp/ (TMPDIR), home/ (HOME), local/, prefect-home/
    worker-1/           the same, for the second worker
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType

from distributed import Client

BIN = Path(sys.executable).parent


class DaskCluster:
    """``with DaskCluster(root, env={...}) as cluster:`` a scheduler and ``workers`` workers
    (``--no-nanny``, ``nthreads`` threads each), all connected; ``cluster.address`` is the
    scheduler's ``tcp://127.0.0.1:PORT``. ``env`` is added to every process's environment (for
    example S3 credentials and ``PREFECT_API_URL``); ``TMPDIR`` and ``HOME`` are always each
    process's own, and so is ``PREFECT_HOME`` unless ``env`` sets it."""

    def __init__(
        self,
        root: Path,
        *,
        workers: int = 2,
        nthreads: int = 2,
        env: Mapping[str, str] | None = None,
        startup_timeout: float = 60,
    ) -> None:
        self.root = root
        self.workers = workers
        self.nthreads = nthreads
        self.extra_env = dict(env or {})
        self.startup_timeout = startup_timeout
        self.address = ""
        self._scheduler: subprocess.Popen[bytes] | None = None
        self._workers: list[subprocess.Popen[bytes]] = []
        self._client: Client | None = None

    def __enter__(self) -> DaskCluster:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- layout -----------------------------------------------------------------------------

    def scheduler_dir(self) -> Path:
        return self.root / "scheduler"

    def worker_dir(self, index: int) -> Path:
        return self.root / f"worker-{index}"

    def worker_name(self, index: int) -> str:
        return f"worker-{index}"

    def worker_pid(self, index: int) -> int:
        return self._workers[index].pid

    def pids(self) -> list[int]:
        """Process ids of the scheduler and every worker started (killed ones included)."""
        scheduler = [self._scheduler.pid] if self._scheduler is not None else []
        return [*scheduler, *(process.pid for process in self._workers)]

    def worker_logs(self, index: int) -> str:
        return (self.worker_dir(index) / "worker.log").read_text(errors="replace")

    def scheduler_logs(self) -> str:
        return (self.scheduler_dir() / "scheduler.log").read_text(errors="replace")

    # -- processes --------------------------------------------------------------------------

    def _environment(self, home: Path) -> dict[str, str]:
        """This machine's environment: the caller's additions, its own TMPDIR, HOME and
        PREFECT_HOME (the latter unless the caller set one)."""
        for sub in ("tmp", "home", "local", "prefect-home"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PREFECT_HOME": str(home / "prefect-home"), **self.extra_env}
        env["TMPDIR"] = str(home / "tmp")
        env["HOME"] = str(home / "home")
        return env

    def _spawn(self, argv: list[str], home: Path, log_name: str) -> subprocess.Popen[bytes]:
        env = self._environment(home)  # creates the folders
        with open(home / log_name, "ab") as log:
            return subprocess.Popen(
                argv,
                cwd=home,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _start(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        home = self.scheduler_dir()
        scheduler_file = home / "scheduler.json"
        self._scheduler = self._spawn(
            [
                str(BIN / "dask"),
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",  # a free port chosen by the scheduler itself: no race with other tests
                "--no-dashboard",
                "--scheduler-file",
                str(scheduler_file),
                "--idle-timeout",
                "15 minutes",  # a safety net should the test process itself be killed
            ],
            home,
            "scheduler.log",
        )
        self.address = self._read_address(scheduler_file, deadline)
        for index in range(self.workers):
            home = self.worker_dir(index)
            self._workers.append(
                self._spawn(
                    [
                        str(BIN / "dask"),
                        "worker",
                        self.address,
                        "--name",
                        self.worker_name(index),
                        "--host",
                        "127.0.0.1",
                        "--no-nanny",
                        "--nthreads",
                        str(self.nthreads),
                        "--no-dashboard",
                        "--local-directory",
                        str(home / "local"),
                        "--death-timeout",
                        "60",  # exits once the scheduler has been gone that long
                    ],
                    home,
                    "worker.log",
                )
            )
        self._client = Client(self.address, timeout=max(1.0, deadline - time.monotonic()))
        try:
            self._client.wait_for_workers(self.workers, timeout=deadline - time.monotonic())
        except TimeoutError as error:
            message = f"dask workers did not connect; see the logs under {self.root}"
            raise RuntimeError(message) from error

    def _read_address(self, scheduler_file: Path, deadline: float) -> str:
        assert self._scheduler is not None
        while True:
            try:
                return str(json.loads(scheduler_file.read_text())["address"])
            except (OSError, ValueError, KeyError):
                pass
            if self._scheduler.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dask scheduler did not start; see {self.scheduler_dir()}")
            time.sleep(0.05)

    @property
    def client(self) -> Client:
        """The test process's own client of this cluster (closed on exit)."""
        assert self._client is not None, "cluster not started"
        return self._client

    def worker_names(self) -> set[str]:
        """Names of the workers the scheduler knows right now."""
        info = self.client.scheduler_info()
        return {str(worker["name"]) for worker in info["workers"].values()}

    def kill_worker(self, index: int) -> None:
        """``kill -9`` of that worker (its whole process group, as if its machine died)."""
        process = self._workers[index]
        _signal_group(process, signal.SIGKILL)
        process.wait(timeout=10)

    def wait_for_departure(self, index: int, timeout: float = 30) -> None:
        """Return once the scheduler no longer lists that worker."""
        deadline = time.monotonic() + timeout
        while self.worker_name(index) in self.worker_names():
            if time.monotonic() > deadline:
                raise TimeoutError(f"scheduler still lists {self.worker_name(index)}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop every process, workers first (a worker told to stop while the scheduler also
        closes can hang in its shutdown): SIGTERM to each process group, SIGKILL after 10 s."""
        if self._client is not None:
            self._client.close(timeout=5)
            self._client = None
        _stop_all(self._workers)
        if self._scheduler is not None:
            _stop_all([self._scheduler])


def _stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        _signal_group(process, signal.SIGKILL)  # also any child left in its group
        process.wait(timeout=10)


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    """Signal the process group led by ``process`` (its own session, so its own group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


# What the e2e ``dask_cluster`` fixture yields: ``start(env=..., workers=2, nthreads=2)``.
DaskClusterFactory = Callable[..., DaskCluster]
