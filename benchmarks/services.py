"""What every benchmark runs against: a Prefect server and the demo gallery, each in its own
process, and how their CPU and a run's wall and CPU time are measured."""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import requests

from deployments.prefect_env import PROCESS_ENV
from gallery_snapshot.demo_gallery import DEMO_CLIENT_ID

BIN = Path(sys.executable).parent
PER_PAGE = 100  # the demo gallery's bulk page size
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_cpu(pid: int) -> float:
    """User plus system CPU seconds of a live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def wait_until_idle(pid: int, *, quiet: float = 2.0, limit: float = 120.0) -> float:
    """Wait until ``pid`` has used no CPU for ``quiet`` seconds; return its CPU then."""
    deadline = time.monotonic() + limit
    last = process_cpu(pid)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = process_cpu(pid)
        if now - last < 0.05:
            return now
        last = now
    return last


def start_gallery(
    images: int, *, latency: float, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """The demo gallery with ``images`` bulk JPEGs in its own process, once it answers; and
    its API's address."""
    port = free_port()
    gallery = subprocess.Popen(
        [
            str(BIN / "gallery-snapshot"),
            "demo-gallery",
            "--port",
            str(port),
            "--images",
            str(images),
            "--latency",
            str(latency),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    api = f"http://127.0.0.1:{port}/3"
    Services._wait(f"{api}/gallery/hot/viral/day/0", DEMO_CLIENT_ID)
    return gallery, api


class Services:
    """A Prefect server and the demo gallery, each in its own process."""

    def __init__(self, work: Path, *, images: int, latency: float, gallery: bool = True) -> None:
        port = free_port()
        self.api_url = f"http://127.0.0.1:{port}/api"
        self.env = {
            **os.environ,
            "PREFECT_HOME": str(work / "prefect-home"),
            "PREFECT_API_URL": self.api_url,
            **PROCESS_ENV,
            "IMGUR_CLIENT_ID": DEMO_CLIENT_ID,
            "TMPDIR": str(work),
        }
        self.server = subprocess.Popen(
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait(f"{self.api_url}/health", None)
        self.gallery: subprocess.Popen[bytes] | None = None
        if not gallery:
            return
        self.gallery, self.gallery_api = start_gallery(images, latency=latency, env=self.env)

    @staticmethod
    def _wait(url: str, client_id: str | None) -> None:
        headers = {"Authorization": f"Client-ID {client_id}"} if client_id else {}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(url, headers=headers, timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"{url} did not come up")

    def close(self) -> None:
        for process in (self.gallery, self.server):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)


def descendants_cpu() -> float:
    """CPU seconds of this process's live descendants (the validation processes and their
    forkserver, which live as long as this process), with the children they reaped."""
    total = 0.0
    for process in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
    return total


def descendants_peak_kb() -> int:
    """The largest peak RSS among this process's live descendants: with this process's own
    peak, the figure ``RUSAGE_CHILDREN`` gives for reaped children (img2dataset's)."""
    peaks = [0]
    for process in psutil.Process().children(recursive=True):
        with contextlib.suppress(OSError, psutil.Error, StopIteration):
            status = Path(f"/proc/{process.pid}/status").read_text().splitlines()
            peaks.append(int(next(line for line in status if line.startswith("VmHWM:")).split()[1]))
    return max(peaks)


def measure(run: Callable[[], None]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (this process, its reaped children and its live
    descendants) of ``run()``."""
    before_self = resource.getrusage(resource.RUSAGE_SELF)
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    before_descendants = descendants_cpu()
    started = time.perf_counter()
    run()
    wall = time.perf_counter() - started
    after_self = resource.getrusage(resource.RUSAGE_SELF)
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(
        after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        for before, after in ((before_self, after_self), (before_children, after_children))
    )
    return wall, cpu + descendants_cpu() - before_descendants
