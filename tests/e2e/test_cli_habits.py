"""What users of gallery-dl and img2dataset expect of a command line: URLs on standard input,
-q and -v, a progress bar on a terminal (and none on a pipe), an exit status for cron when too
much failed, a default output folder; and what the server then shows of such runs (their names,
tags and artifact keys, per source)."""

from __future__ import annotations

import os
import pty
import re
import subprocess
from pathlib import Path
from typing import Any

from gallery_snapshot.demo_gallery import DemoGallery, bulk_catalogue
from tests.support.prefect_server import BIN, PrefectServer
from tests.support.snapshot_runs import manifests, run_args

BAR_REDRAW = "\x1b[K"  # the bar redraws its line in place


def snapshot(
    server: PrefectServer,
    *args: str,
    stdin: str | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """The gallery-snapshot command, its stdout and stderr pipes (not a terminal)."""
    return subprocess.run(
        [str(BIN / "gallery-snapshot"), *args],
        input=stdin,
        cwd=cwd,
        env={**server.env, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def flow_run(server: PrefectServer, output: str) -> dict[str, Any]:
    """The flow run whose page the command printed."""
    [run_id] = re.findall(r"run page: \S+/runs/flow-run/([0-9a-f-]{36})", output)
    return server.api("GET", f"/flow_runs/{run_id}").json()  # type: ignore[no-any-return]


def artifact_keys(server: PrefectServer, run_id: str) -> set[str]:
    artifacts = server.api(
        "POST", "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [run_id]}}}
    ).json()
    return {artifact["key"] for artifact in artifacts}


def test_urls_on_standard_input_into_the_default_folder(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    with DemoGallery() as gallery:
        urls = f"{gallery.base_url}/Jpg001.jpg\n# a comment\n{gallery.base_url}/Jpg002.jpg\n"
        args = ["run", "--urls-file", "-", "--allow-host", gallery.image_host]
        first = snapshot(prefect_server, *args, stdin=urls, cwd=tmp_path)
        second = snapshot(
            prefect_server, *args, stdin=urls + f"{gallery.base_url}/Jpg003.jpg\n", cwd=tmp_path
        )
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    # ./gallery-snapshot/snapshots/<id>: not ./snapshots/snapshots/<id>
    older, newer = manifests(tmp_path / "gallery-snapshot")
    assert f"manifest: {tmp_path / 'gallery-snapshot' / 'snapshots'}" in first.stdout
    assert "snapshots/snapshots" not in first.stdout
    assert older["source"]["urls_file"] == "-"
    assert (older["counts"]["downloaded"], newer["counts"]["downloaded"]) == (2, 1)

    run = flow_run(prefect_server, second.stdout)
    assert run["name"].startswith("urls-stdin-") and run["name"].endswith(run["id"][-6:])
    assert "source:urls-stdin" in run["tags"]  # created with it
    assert newer["snapshot_id"].endswith(run["id"][-6:])
    assert {"urls-stdin-summary", "urls-stdin-report"} <= artifact_keys(prefect_server, run["id"])
    report = prefect_server.api(
        "POST", "/artifacts/filter", json={"artifacts": {"key": {"any_": ["urls-stdin-report"]}}}
    ).json()
    # Standard input is one source from run to run: the second run's changes are the first's.
    assert any(f"## Changes since `{older['snapshot_id']}`" in item["data"] for item in report)


def test_too_much_standard_input_is_one_line(prefect_server: PrefectServer, tmp_path: Path) -> None:
    result = snapshot(
        prefect_server,
        "run",
        "--urls-file",
        "-",
        "--out",
        str(tmp_path / "out"),
        stdin="https://i.imgur.com/a.jpg\n" * 100_001,
    )
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == "gallery-snapshot: error: standard input has more than 100000 lines", last
    assert "Traceback" not in result.stderr


def test_quiet_prints_nothing_and_fail_on_has_exit_status_3(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    out = str(tmp_path / "demo")
    # The demo gallery: 1 failed and 2 invalid of 19 selected, 15.8 %.
    over = snapshot(prefect_server, "demo", "-q", "--out", out, "--fail-on", "10")
    assert over.returncode == 3, over.stderr
    assert over.stdout == ""
    assert over.stderr == (
        "gallery-snapshot: error: 15.8 % of the 19 selected images failed or were invalid, "
        "more than --fail-on 10\n"
    )
    under = snapshot(prefect_server, "demo", "--quiet", "--out", out, "--fail-on", "20")
    assert (under.returncode, under.stdout, under.stderr) == (0, "", "")
    assert len(manifests(Path(out))) == 2  # both snapshots are whole: exit 3 loses nothing


def test_verbose_prints_every_log_line_and_a_pipe_gets_no_bar(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    plain = snapshot(prefect_server, "demo", "--out", str(tmp_path / "plain"))
    verbose = snapshot(prefect_server, "demo", "-v", "--out", str(tmp_path / "verbose"))
    assert plain.returncode == verbose.returncode == 0, plain.stderr + verbose.stderr
    assert "images fetched" in plain.stderr  # the progress lines, as they come
    assert "Task run 'download_images[" not in plain.stderr
    assert "Task run 'download_images[" in verbose.stderr  # each task run's own lines
    for result in (plain, verbose):
        assert BAR_REDRAW not in result.stderr and "ETA" not in result.stderr
        assert "downloaded      14" in result.stdout


def test_a_terminal_gets_a_progress_bar_with_rate_and_eta(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    # 60 images at 0.3 s each, 2 at a time: about 9 s of downloads, several progress ticks.
    with DemoGallery(bulk_catalogue(60, kilobytes=10), latency=0.3) as gallery:
        master, terminal = pty.openpty()
        process = subprocess.Popen(
            [str(BIN / "gallery-snapshot"), *run_args(gallery, tmp_path / "out", "--workers", "2")],
            env={**prefect_server.env, "IMGUR_CLIENT_ID": gallery.client_id},
            stdout=subprocess.PIPE,
            stderr=terminal,
            text=True,
        )
        os.close(terminal)
        shown = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: every end of the terminal is closed, the command is done
                break
            if not chunk:
                break
            shown += chunk
        os.close(master)
        stdout, _ = process.communicate(timeout=300)
    text = shown.decode(errors="replace")
    assert process.returncode == 0, text
    bars = [line for line in text.split("\r") if "fetched" in line and "images/s" in line]
    assert bars, text
    assert any(re.search(r"\d+\.\d images/s  ETA \d+:\d\d", line) for line in bars), bars
    assert "images fetched," not in text  # the bar stands in for the progress lines
    assert "downloaded      60" in stdout
