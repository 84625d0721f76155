"""Processes the end-to-end tests start and must end: ``running(argv)`` leaves nothing behind,
whatever the test did, not even the processes its process started in sessions of their own."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

WORKER_GRACE = 15  # seconds a worker gets to stop on SIGTERM (it takes ~3), then SIGKILL


def start_time(pid: int) -> str | None:
    """The start time of process ``pid`` (tells it from a later process given the same pid);
    None once it has ended (a zombie has)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]


def children(pid: int) -> list[int]:
    """The processes ``pid`` started (Linux /proc)."""
    try:
        return [
            int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        ]
    except OSError:
        return []


def descendants(pid: int) -> list[int]:
    """The processes ``pid`` started, and theirs."""
    return [grand for child in children(pid) for grand in [child, *descendants(child)]]


class ProcessTree:
    """Every process ``root`` starts, and theirs, as seen every half second while it runs:
    a flow process runs in a session of its own and outlives a killed worker, so the worker's
    tree at the end is not enough to end them all."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.seen: dict[int, str] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while True:
            self.record()
            if self._done.wait(0.5):
                return

    def record(self) -> None:
        for pid in descendants(self.root):
            if (started := start_time(pid)) is not None:
                self.seen.setdefault(pid, started)

    def kill_all(self) -> None:
        """SIGKILL the process group of every process seen that still runs."""
        self._done.set()
        self._thread.join()
        for pid, started in self.seen.items():
            if start_time(pid) == started:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(os.getpgid(pid), signal.SIGKILL)


@contextmanager
def running(
    argv: list[str], *, cwd: Path, env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """``argv`` in a session of its own, its output in ``log``. It leaves nothing behind,
    whatever the test did: at the end its process group gets SIGTERM, then SIGKILL after
    WORKER_GRACE, and every process it started (a worker's flow processes, each in a session
    of its own), SIGKILL."""
    with open(log, "wb") as output:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        tree = ProcessTree(process.pid)
        try:
            yield process
        finally:
            tree.record()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=WORKER_GRACE)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            tree.kill_all()
