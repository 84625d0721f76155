"""A run parameter is not a key to the worker: a deployment served with secrets in its
environment (``python -m deployments.serve``, a real Prefect server), started with hostile
parameters, neither publishes nor sends them, and reads, writes and connects only where the
worker's environment allows."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.deployments import REPO, artifacts_of, finished, log_messages, run_deployment
from tests.support.hostile_server import TRAP_HOST, HostileServer, serving
from tests.support.prefect_server import PrefectServer, running_server
from tests.support.processes import running

SECRETS = {
    "IMGUR_CLIENT_ID": "client-id-SECRET-4c1d9e",
    "AWS_SECRET_ACCESS_KEY": "aws-SECRET-8b7f2a",
}


@dataclass
class ServedWorker:
    home: Path  # its HOME: the output root is home/gallery-snapshot
    lists: Path  # GALLERY_SNAPSHOT_URLS_DIRS
    log: Path


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """A server of this module's own: the session's holds the work-pool deployment `demo` that
    `prefect deploy` made, and a flow run the served `demo` took from it crashed loading its
    code from that deployment's storage (path None)."""
    with running_server(tmp_path_factory.mktemp("served-prefect-home")) as server:
        yield server


@pytest.fixture(scope="module")
def served(
    prefect_server: PrefectServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedWorker]:
    """``python -m deployments.serve demo`` with the secrets in its environment, and a folder
    of URLs files the worker allows."""
    folder = tmp_path_factory.mktemp("served")
    worker = ServedWorker(home=folder / "home", lists=folder / "lists", log=folder / "serve.log")
    worker.home.mkdir()
    worker.lists.mkdir()
    inherited = {k: v for k, v in prefect_server.env.items() if not k.startswith("GALLERY_")}
    env = {
        **inherited,
        **SECRETS,
        "HOME": str(worker.home),
        "GALLERY_SNAPSHOT_URLS_DIRS": str(worker.lists),
    }
    argv = [sys.executable, "-m", "deployments.serve", "demo"]
    with running(argv, cwd=REPO, env=env, log=worker.log) as process:
        deadline = time.monotonic() + 120  # a hang bound
        while not requests.get(
            f"{prefect_server.api_url}/deployments/name/gallery-snapshot/demo", timeout=10
        ).ok:
            assert process.poll() is None and time.monotonic() < deadline, worker.log.read_text()
            time.sleep(1)
        yield worker


@pytest.fixture
def trap() -> Iterator[HostileServer]:
    with serving(HostileServer(TRAP_HOST, trap=True)) as server:
        yield server


def test_hostile_run_parameters_never_reach_the_workers_secrets_files_or_network(
    prefect_server: PrefectServer, served: ServedWorker, trap: HostileServer, tmp_path: Path
) -> None:
    (served.lists / "environ").symlink_to("/proc/self/environ")
    os.mkfifo(served.lists / "fifo")
    outside = tmp_path / "outside"
    # The file a worker allows may hold anything: lines that are no links are not echoed.
    lines = [f"{name}={value}" for name, value in SECRETS.items()]
    lines.append(f"https://user:{SECRETS['IMGUR_CLIENT_ID']}@i.imgur.com:99999/x.jpg")
    (served.lists / "mixed.txt").write_text("\n".join(lines) + "\n")
    urls = {"kind": "urls"}
    hostile: dict[str, list[dict[str, Any]]] = {
        "is not in a folder this worker reads URLs files from": [
            {"source": {**urls, "urls_file": "/proc/self/environ"}},
            {"source": {**urls, "urls_file": str(served.lists / "environ")}},
        ],
        "not a regular file (a FIFO)": [
            {"source": {**urls, "urls_file": str(served.lists / "fifo")}}
        ],
        "is not an API this worker sends its client id to": [
            {"source": {"api_url": f"{trap.base_url}/3"}}
        ],
        "is not where this worker writes for a run": [{"out_dir": str(outside)}],
        "is not a scheduler this worker connects to": [
            {
                "demo_gallery": True,
                "runner": "dask",
                "dask_address": f"tcp://{trap.host}:{trap.port}",
            }
        ],
    }
    started = [
        (wanted, run_deployment(prefect_server, "demo", config))
        for wanted, configs in hostile.items()
        for config in configs
    ]
    skipping = run_deployment(
        prefect_server, "demo", {"source": {**urls, "urls_file": str(served.lists / "mixed.txt")}}
    )

    published: list[str] = []
    for wanted, run in started:
        run = finished(prefect_server, run, served.log)
        assert run["state_type"] == "FAILED", (wanted, served.log.read_text())
        messages = log_messages(prefect_server, run["id"], wanted)
        assert any(wanted in m for m in messages), json.dumps(messages, indent=1)
        assert not [m for m in messages if "Traceback" in m or m.count("\n") > 1], messages
        published += messages
        published.append(json.dumps(artifacts_of(prefect_server, run["id"])))
    skipping = finished(prefect_server, skipping, served.log)
    assert skipping["state_type"] == "COMPLETED", served.log.read_text()
    published += log_messages(prefect_server, skipping["id"], "recorded in")
    report = artifacts_of(prefect_server, skipping["id"])
    # A run of another source on the demo deployment: keyed by both (not the demo's history).
    assert "line 1: not an http(s) URL" in report["demo-urls-mixed-report"]["data"]
    published.append(json.dumps(report))

    assert trap.connections == 0  # neither the client id nor a Dask handshake went there
    assert not outside.exists()
    written = [path for path in served.home.rglob("*") if path.is_file()]
    assert any(path.name == "manifest.json" for path in written)
    assert any(path.name == "index.html" for path in written)
    published += [path.read_text(errors="replace") for path in written]
    published.append(served.log.read_text(errors="replace"))
    for name, secret in SECRETS.items():
        assert not [text for text in published if secret in text], name


FORGED = "12:00:00.000 | CRITICAL | forged line"


def test_parameter_text_never_breaks_or_escapes_the_runs_name_state_or_logs(
    prefect_server: PrefectServer, served: ServedWorker, trap: HostileServer
) -> None:
    """Parameters become text a person reads: the run's name, its state message, its log
    lines, in the UI and in the worker's terminal. One holding a line break or an escape
    sequence (a terminal hyperlink, a screen clear) is refused before the run does anything."""
    link = "\x1b]8;;https://evil.example/\x07click\x1b]8;;\x07"
    hostile = [
        {"demo_gallery": True, "out_dir": f"snapshots/x{link}\n{FORGED}"},
        {"source": {"kind": "urls", "urls_file": f"lists{link}\x1b[2J\n{FORGED}"}},
        {
            "source": {
                "kind": "subreddit",
                "subreddit": "EarthPorn\n",
                "api_url": f"{trap.base_url}/3",
            }
        },
    ]
    started = [run_deployment(prefect_server, "demo", config) for config in hostile]
    for run in started:
        run = finished(prefect_server, run, served.log)
        assert run["state_type"] == "FAILED", served.log.read_text()
        messages = log_messages(prefect_server, run["id"], "Finished in state")
        assert messages
        for text in [run["name"], run["state"]["message"], *messages]:
            assert "\x1b" not in text and "\x07" not in text, text
            assert not any(line.startswith(FORGED) for line in text.splitlines()), text
        assert "\n" not in run["name"]
    assert trap.connections == 0
    assert not [path for path in served.home.rglob("*") if "evil" in path.name]
