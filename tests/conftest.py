"""Test isolation: every Prefect home, database and temporary file of the suite lives in one
throw-away folder, set before anything imports Prefect."""

from __future__ import annotations

import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployments.prefect_env import PROCESS_ENV

_ROOT = Path(tempfile.mkdtemp(prefix="gallery-snapshot-tests-"))
(_ROOT / "tmp").mkdir()
os.environ["PREFECT_HOME"] = str(_ROOT / "prefect-home")
os.environ["TMPDIR"] = str(_ROOT / "tmp")
# The project's Prefect settings, but for heartbeats and our loggers in the API: in-process
# flows of the suite are short, and its loggers log outside flow runs too.
for name in ("PREFECT_SERVER_ANALYTICS_ENABLED", "PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL"):
    os.environ[name] = PROCESS_ENV[name]
for name in ("PREFECT_API_URL", "PREFECT_API_KEY", "IMGUR_CLIENT_ID", "IMGUR_API_URL"):
    os.environ.pop(name, None)
tempfile.tempdir = None  # re-read TMPDIR
# A suite started in the background by a shell without job control (`nohup make test &` in a
# script, a CI step) inherits SIGINT ignored, and so would every process it starts: `prefect
# worker start` then never stops (Prefect's CLI turns SIGTERM into SIGINT), and no Python
# program gets KeyboardInterrupt. With a handler here, children start with the default.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

from hypothesis import settings  # noqa: E402

# No per-example time limit: machines are shared and noisy, and no test asserts a duration.
settings.register_profile("shared-machine", deadline=None)
settings.load_profile("shared-machine")

from gallery_snapshot.demo_gallery import DemoGallery  # noqa: E402

TESTS = Path(__file__).parent
TIERS = {"unit": "unit", "flows": "flow", "e2e": "e2e"}  # folder -> marker


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its tier, by the folder it is in: ``pytest -m unit`` (or ``flow``,
    ``e2e``) selects one tier, and a test moved between folders changes tier with it."""
    for item in items:
        folder = item.path.relative_to(TESTS).parts[0]
        if folder in TIERS:
            item.add_marker(TIERS[folder])


@pytest.fixture
def gallery() -> Iterator[DemoGallery]:
    """A fresh demo gallery (default catalogue) on a free loopback port."""
    with DemoGallery() as running:
        yield running


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    return tmp_path / "out"
