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
from gallery_snapshot.errors import SnapshotError, StoreError
from tasks.retry_policy import is_retryable


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


def killed(pid_file: str) -> None:
    """Record this pool process's id, then die as the OOM killer would end it."""
    Path(pid_file).write_text(str(os.getpid()))
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_killed_pool_process_fails_its_batch_in_one_line_and_the_next_batch_recovers(
    tmp_path: Path,
) -> None:
    # A long-lived process (a served deployment, a test harness) keeps its pool: one pool
    # process OOM-killed must not break every later batch of every later run in it.
    # Failed on main: BrokenProcessPool (a traceback, not a SnapshotError's one line), then
    # again on every later call, the task's retry included (the broken pool stayed).
    with pytest.raises(SnapshotError, match="validation process ended abruptly") as raised:
        run_on_cores(2, killed, str(tmp_path / "pid"))
    assert "\n" not in str(raised.value)
    assert is_retryable(raised.value)  # the task's retry gets a new pool
    assert run_on_cores(2, os.getpid) not in {os.getpid(), int((tmp_path / "pid").read_text())}


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


STOPPED_PARENT = """
import os, signal, sys
from gallery_snapshot.cores import run_on_cores
from tests.unit.test_cores import wait_for_release
signal.signal(signal.SIGTERM, lambda *_: print("stopping", flush=True))  # as Prefect's engine
try:
    print(run_on_cores(2, wait_for_release, sys.argv[1]), flush=True)
except Exception as exc:
    print(type(exc).__name__, exc, flush=True)
"""


def wait_for_release(folder: str) -> int:
    """Say that the batch has started, then work on until released."""
    (Path(folder) / "started").write_text(str(os.getpid()))
    while not (Path(folder) / "release").exists():
        time.sleep(0.05)
    return os.getpid()


def test_a_sigterm_to_the_callers_group_leaves_its_batches_to_the_caller(tmp_path: Path) -> None:
    # A Prefect worker cancels a run by SIGTERM to the flow process's whole group: the pool
    # processes must not die of it mid-batch (failing the batch, in a run ending Cancelled);
    # the caller decides. Failed on main: the pool process died, the batch failed
    # (BrokenProcessPool).
    parent = subprocess.Popen(
        [sys.executable, "-c", STOPPED_PARENT, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
        stderr=subprocess.DEVNULL,  # (its resource tracker dies of the SIGTERM too, and says so)
        start_new_session=True,  # as the worker starts a flow run's process
    )
    try:
        deadline = time.monotonic() + 60  # a hang bound
        while not (tmp_path / "started").exists():
            assert time.monotonic() < deadline and parent.poll() is None
            time.sleep(0.05)
        os.killpg(parent.pid, signal.SIGTERM)  # a fatal signal's kill is done when this returns
        assert parent.stdout is not None
        assert parent.stdout.readline() == "stopping\n"
        (tmp_path / "release").touch()
        assert parent.stdout.readline() == (tmp_path / "started").read_text() + "\n"
    finally:
        parent.kill()
        parent.wait()


QUICK_PARENT = """
import sys, time
from gallery_snapshot.cores import start_cores
start_cores(2)
time.sleep(float(sys.argv[1]))  # then the run ends: it failed, or had nothing to download
"""


@pytest.mark.parametrize("after", [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0])
def test_a_process_ending_while_its_pool_starts_ends_quietly(tmp_path: Path, after: float) -> None:
    # A run that ends right after its downloads start (a failure, Ctrl-C, nothing selected)
    # must end with its own last line, not with the pool processes' tracebacks. Failed on main
    # (for some of these moments): "FileNotFoundError" tracebacks of pool processes that were
    # still reading their start-up data when the process ended (its semaphores gone).
    ended = subprocess.run(
        [sys.executable, "-c", QUICK_PARENT, str(after)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
        timeout=120,
    )
    assert ended.returncode == 0
    assert "Traceback" not in ended.stderr, ended.stderr


def environment_and_folder() -> tuple[str | None, str]:
    return os.environ.get("GALLERY_SNAPSHOT_CORES_TEST"), os.getcwd()


def test_work_sees_the_callers_environment_and_folder_at_the_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool outlives the call that started it: an object store's credentials set later
    (another test, another run in the same process) must reach the work."""
    run_on_cores(2, os.getpid)  # the pool and its forkserver exist before the change
    monkeypatch.setenv("GALLERY_SNAPSHOT_CORES_TEST", "later")
    monkeypatch.chdir(tmp_path)
    assert run_on_cores(2, environment_and_folder) == ("later", str(tmp_path))


NO_FILES_LEFT = """
import os, resource
from gallery_snapshot.cores import run_on_cores
open_now = len(os.listdir("/proc/self/fd"))
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (open_now + 1, hard))
print(run_on_cores(2, os.getpid) == os.getpid())
"""


def test_work_runs_in_place_when_no_process_can_start(tmp_path: Path) -> None:
    """A ``ulimit -n`` too low for the pool's pipes: the batch is validated here, quietly."""
    done = subprocess.run(
        [sys.executable, "-c", NO_FILES_LEFT],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
        timeout=120,
        check=False,
    )
    assert (done.returncode, done.stdout.strip()) == (0, "True"), done.stderr[-2000:]
    assert "Traceback" not in done.stderr
