"""A `gallery-snapshot run` ended from outside: SIGINT, SIGTERM, and its Prefect server killed
with -9. Each ends the run at once with one line and its exit status, leaves the store whole,
and the same command then finishes the job."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gallery_snapshot.demo_gallery import DemoGallery, bulk_catalogue
from tests.support.folder_store import assert_store_is_clean, stored
from tests.support.prefect_server import BIN, PrefectServer
from tests.support.snapshot_runs import manifests, run_args

# Not a speed check: the bound only a hang breaks (the trickled downloads take hours, and a
# lost API kept the old code retrying for minutes).
HANG_BOUND = 90


def start_run(
    prefect_server: PrefectServer, argv: list[str], client_id: str
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIN / "gallery-snapshot"), *argv],
        env={**prefect_server.env, "IMGUR_CLIENT_ID": client_id},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition: Callable[[], bool], run: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + HANG_BOUND
    while not condition():
        assert run.poll() is None, run.communicate()
        assert time.monotonic() < deadline, "the run never got there"
        time.sleep(0.1)


def errors_of(stderr: str) -> list[str]:
    """Our own error lines (the rest of stderr is the run's log)."""
    assert "Traceback" not in stderr and "threading" not in stderr, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.startswith("gallery-snapshot:")]
    assert lines, stderr[-3000:]
    return lines


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_ends_a_run_with_stuck_downloads_at_once(
    prefect_server: PrefectServer, tmp_path: Path, signum: signal.Signals, status: int
) -> None:
    out = tmp_path / "out"
    with DemoGallery(bulk_catalogue(12, kilobytes=10)) as gallery:
        stuck = [f"/B{n:07d}.jpg" for n in range(0, 12, 3)]
        for path in stuck:  # one byte every 5 s: each of these downloads takes hours
            gallery.state.faults[path] = ["trickle=5"]
        argv = run_args(gallery, out, "--workers", "4")
        run = start_run(prefect_server, argv, gallery.client_id)
        wait_for(lambda: all(gallery.state.requests_for(path) for path in stuck), run)
        run.send_signal(signum)
        _, stderr = run.communicate(timeout=HANG_BOUND)
        assert run.returncode == status
        assert errors_of(stderr) == [
            f"gallery-snapshot: error: interrupted ({signum.name}); stored images are intact, "
            "run the command again to finish"
        ]
        flow_run = prefect_server.api(
            "POST",
            "/flow_runs/filter",
            # The CLI's own run: the session server also holds deployments' scheduled runs.
            json={
                "flow_runs": {"deployment_id": {"is_null_": True}},
                "sort": "START_TIME_DESC",
                "limit": 1,
            },
        ).json()[0]
        assert flow_run["state_type"] == "CANCELLED"

        again = prefect_server.snapshot(*argv, env={"IMGUR_CLIENT_ID": gallery.client_id})
    assert again.returncode == 0, again.stderr
    [manifest] = manifests(out)
    assert manifest["counts"]["downloaded"] + manifest["counts"]["reused"] == 12
    assert len(stored(out)) == 12
    assert_store_is_clean(out)  # the interrupted run's staging was taken over


def test_a_lost_prefect_server_ends_the_run_and_the_same_command_finishes_later(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with DemoGallery(bulk_catalogue(60, kilobytes=10), latency=0.3) as gallery:
        argv = run_args(gallery, out, "--workers", "2")
        run = start_run(prefect_server, argv, gallery.client_id)
        wait_for(lambda: len(gallery.state.requests) > 10, run)
        assert prefect_server.process is not None
        try:
            os.killpg(prefect_server.process.pid, signal.SIGKILL)
            prefect_server.process.wait()
            _, stderr = run.communicate(timeout=HANG_BOUND)
        finally:
            prefect_server.start()  # the rest of the suite needs it
        assert run.returncode == 1, stderr[-3000:]
        assert errors_of(stderr) == [
            f"gallery-snapshot: error: lost the Prefect API at {prefect_server.api_url}; stored "
            "images are intact, run the same command again once the server is back to finish"
        ]
        before = stored(out)

        again = prefect_server.snapshot(*argv, env={"IMGUR_CLIENT_ID": gallery.client_id})
    assert again.returncode == 0, again.stderr
    [manifest] = manifests(out)
    assert manifest["counts"]["downloaded"] + manifest["counts"]["reused"] == 60
    after = stored(out)
    assert len(after) == 60 and {path: after[path] for path in before} == before
    assert_store_is_clean(out)
