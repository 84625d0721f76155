"""The validation processes: they run the work off the caller's process, hand back its
result or its error, and never outlive the process that started them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from gallery_snapshot.cores import run_on_cores, usable_cores, validation_processes
from gallery_snapshot.errors import StoreError


def failing(message: str) -> None:
    raise StoreError(message)


def test_work_runs_in_a_pool_process_or_in_the_caller_when_none() -> None:
    assert run_on_cores(0, os.getpid) == os.getpid()
    pids = {run_on_cores(2, os.getpid) for _ in range(6)}
    assert os.getpid() not in pids
    assert all(psutil.Process(pid).ppid() != os.getpid() for pid in pids)  # the forkserver's


def test_an_error_in_a_pool_process_arrives_as_itself_with_its_one_line() -> None:
    line = "cannot write to /x: No space left on device"
    with pytest.raises(StoreError) as raised:
        run_on_cores(2, failing, line)
    assert str(raised.value) == line


def test_one_core_or_a_worker_process_validates_in_place() -> None:
    assert validation_processes(in_own_process=True) == 0
    cores = usable_cores()
    assert validation_processes(in_own_process=False) == (cores if cores > 1 else 0)


PARENT = """
import os, sys
from gallery_snapshot.cores import run_on_cores
print(run_on_cores(2, os.getpid), flush=True)
sys.stdin.read()
"""


def start_parent(tmp_path: Path) -> tuple[subprocess.Popen[str], psutil.Process]:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    assert parent.stdout is not None
    return parent, psutil.Process(int(parent.stdout.readline()))


def gone(process: psutil.Process, *, within: float) -> bool:
    end = time.monotonic() + within
    while time.monotonic() < end:
        if not process.is_running() or process.status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.05)
    return False


def test_pool_processes_die_when_their_caller_is_killed(tmp_path: Path) -> None:
    parent, pool_process = start_parent(tmp_path)
    assert pool_process.is_running()
    parent.kill()  # kill -9: no cleanup of its own runs
    parent.wait()
    assert gone(pool_process, within=10), "a validation process outlived its killed caller"


def test_ctrl_c_is_the_callers_to_handle_not_the_pool_processes(tmp_path: Path) -> None:
    parent, pool_process = start_parent(tmp_path)
    try:
        pool_process.send_signal(signal.SIGINT)  # as a terminal sends it to the whole group
        assert not gone(pool_process, within=1)
    finally:
        parent.kill()
        parent.wait()
    assert gone(pool_process, within=10)
