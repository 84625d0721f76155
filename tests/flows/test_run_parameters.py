"""The flows as a deployment run runs them: in a process the CLI did not mark, so what the
parameters may reach is what the worker's environment allows (gallery_snapshot.run_policy).
The end-to-end twin, through a served deployment and a real server:
tests/e2e/test_run_parameters.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flows.prune import gallery_prune
from flows.snapshot import gallery_snapshot
from gallery_snapshot.config import PruneConfig, SnapshotConfig
from gallery_snapshot.errors import ConfigError
from tests.support.hostile_server import TRAP_HOST, HostileServer, serving
from tests.support.manifests import read_document
from tests.support.terminal_user import forget_terminal_user

SECRET = "client-id-SECRET-5e1b"


@pytest.fixture
def worker_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A deployment run's process: not the terminal user's; a client id in its environment;
    its output root ``HOME/gallery-snapshot``."""
    forget_terminal_user()
    home = tmp_path / "home"
    (home / "gallery-snapshot").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("IMGUR_CLIENT_ID", SECRET)
    yield home


@pytest.fixture
def trap() -> Iterator[HostileServer]:
    with serving(HostileServer(TRAP_HOST, trap=True)) as server:
        yield server


def refused(config: dict[str, Any]) -> str:
    """The flow run's one-line refusal."""
    state = gallery_snapshot(SnapshotConfig.model_validate(config), return_state=True)
    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, ConfigError), error
    assert "\n" not in str(error) and SECRET not in str(error)
    return str(error)


@pytest.mark.usefixtures("worker_home")
def test_hostile_parameters_are_refused_before_anything_is_sent_read_or_written(
    trap: HostileServer, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    assert "is not an API this worker sends its client id to" in refused(
        {"source": {"api_url": f"{trap.base_url}/3"}}
    )
    assert "is not in a folder this worker reads URLs files from" in refused(
        {"source": {"kind": "urls", "urls_file": "/proc/self/environ"}}
    )
    assert "is not where this worker writes for a run" in refused({"out_dir": str(outside)})
    assert "is not where this worker writes for a run" in refused({"out_dir": "../../outside"})
    assert "is not a scheduler this worker connects to" in refused(
        {"demo_gallery": True, "runner": "dask", "dask_address": f"tcp://{trap.host}:{trap.port}"}
    )
    assert trap.connections == 0
    assert not outside.exists()


def test_the_workers_environment_lets_runs_reach_what_it_names(
    worker_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lists, shared = tmp_path / "lists", tmp_path / "shared"
    lists.mkdir()
    (lists / "env.txt").write_text(f"IMGUR_CLIENT_ID={SECRET}\nhttps://i.imgur.com/a.gif\n")
    monkeypatch.setenv("GALLERY_SNAPSHOT_URLS_DIRS", str(lists))
    monkeypatch.setenv("GALLERY_SNAPSHOT_OUT_ROOTS", str(shared))
    config = {"source": {"kind": "urls", "urls_file": str(lists / "env.txt")}}
    summary = gallery_snapshot(SnapshotConfig.model_validate({**config, "out_dir": str(shared)}))
    manifest = read_document(summary["manifest"])
    assert manifest["skipped"][0] == {"url": "", "id": None, "reason": "line 1: not an http(s) URL"}
    page = (Path(summary["page"])).read_text()
    assert SECRET not in page and SECRET not in Path(summary["manifest"]).read_text()


@pytest.mark.usefixtures("worker_home")
def test_a_prune_run_cannot_reach_outside_the_output_root(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    (victim / "snapshots").mkdir(parents=True)
    state = gallery_prune(
        PruneConfig(out_dirs=["snapshots/viral", str(victim)], keep_last=1), return_state=True
    )
    assert state.is_failed()
    assert "is not where this worker writes for a run" in str(state.result(raise_on_failure=False))
    assert (victim / "snapshots").is_dir()


FORGED = "12:00:00.000 | CRITICAL | forged line"


@pytest.mark.usefixtures("worker_home")
def test_a_prune_runs_folder_names_never_break_or_escape_a_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A folder name is text in the run's log lines (in the worker's terminal too): one with a
    line break or an escape sequence is refused as a parameter, never logged raw."""
    hostile = f"snapshots/x\x1b]8;;https://evil.example/\x07click\x1b]8;;\x07\n{FORGED}"
    with caplog.at_level("INFO"):
        state = gallery_prune(  # type: ignore[call-overload]  # a run's raw parameters
            config={"out_dirs": [hostile], "keep_last": 1}, return_state=True
        )
    assert state.is_failed()
    messages = [record.getMessage() for record in caplog.records]
    assert messages
    for message in messages:
        assert "\x1b" not in message and not message.startswith(FORGED)
        assert not any(line.startswith(FORGED) for line in message.splitlines())
