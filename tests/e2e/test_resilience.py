"""Crashes, concurrent runs and a full disk, with real processes and real files."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from PIL import Image

from gallery_snapshot.demo_gallery import DemoGallery, bulk_catalogue
from tests.support.folder_store import assert_store_is_clean, stored
from tests.support.prefect_server import BIN, PrefectServer
from tests.support.snapshot_runs import manifests, run_args


def indexed_urls(out: Path) -> list[str]:
    """The URLs the store's index says it holds."""
    with closing(sqlite3.connect(out / "index.sqlite")) as index:
        return [url for (url,) in index.execute("SELECT url FROM urls")]


def test_kill_9_mid_download_then_the_same_command_finishes(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with DemoGallery(bulk_catalogue(300, kilobytes=10), latency=0.05) as gallery:
        argv = run_args(gallery, out, "--pages", "3", "--workers", "4")
        env = {**prefect_server.env, "IMGUR_CLIENT_ID": gallery.client_id}
        victim = subprocess.Popen(
            [str(BIN / "gallery-snapshot"), *argv],
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 180
        while len(stored(out)) < 40 if (out / "images").exists() else True:
            assert victim.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no progress to interrupt"
            time.sleep(0.05)
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
        before = stored(out)
        indexed = indexed_urls(out)
        assert 40 <= len(before) < 300
        for path in (out / "images").rglob("*"):
            if path.is_file():
                with Image.open(path) as image:
                    image.load()

        rerun = prefect_server.snapshot(*argv, env={"IMGUR_CLIENT_ID": gallery.client_id})
        assert rerun.returncode == 0, rerun.stderr
        [manifest] = manifests(out)
        counts = manifest["counts"]
        assert counts["downloaded"] + counts["reused"] == 300
        assert counts["reused"] >= len(indexed)
        # Nothing the dead run had stored and indexed was fetched again, and of what it had
        # received whole but not yet validated, nothing either: only the downloads in flight
        # at the kill (at most one per worker) are fetched twice.
        for url in indexed:
            assert gallery.state.requests_for(urlsplit(url).path) == [200]
        twice = [
            image["url"]
            for image in manifest["images"]
            if gallery.state.requests_for(urlsplit(image["url"]).path).count(200) > 1
        ]
        assert len(twice) <= 4, twice
    after = stored(out)
    assert len(after) == 300
    assert {path: after[path] for path in before} == before
    assert_store_is_clean(out)


def test_two_snapshots_at_once_into_one_folder(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    out = tmp_path / "shared"
    with DemoGallery(bulk_catalogue(150, kilobytes=10), latency=0.02) as gallery:
        argv = [str(BIN / "gallery-snapshot"), *run_args(gallery, out, "--pages", "2")]
        env = {**prefect_server.env, "IMGUR_CLIENT_ID": gallery.client_id}
        runs = [
            subprocess.Popen(
                argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for _ in range(2)
        ]
        outcomes = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outcomes
    both = manifests(out)
    assert len(both) == 2
    for manifest in both:
        assert manifest["counts"]["downloaded"] + manifest["counts"]["reused"] == 150
        for image in manifest["images"]:
            assert hashlib.sha256((out / image["path"]).read_bytes()).hexdigest() == image["sha256"]
    assert len(stored(out)) == 150
    assert_store_is_clean(out)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs: a disk that can really fill up."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_full_disk_is_a_clear_error_and_the_store_stays_intact(
    prefect_server: PrefectServer, small_disk: Path
) -> None:
    out = small_disk / "out"
    first = prefect_server.snapshot("demo", "--out", str(out))
    assert first.returncode == 0, first.stderr
    kept = stored(out)
    missing = sorted(kept)[:3]
    for relative in missing:
        (out / relative).unlink()
    filler = small_disk / "filler"
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(bytes(65536))
                handle.flush()
        except OSError:
            pass

    full = prefect_server.snapshot("demo", "--out", str(out))
    assert full.returncode == 1
    last_line = full.stderr.strip().splitlines()[-1]
    assert last_line.startswith("gallery-snapshot: error: cannot write to ")
    assert last_line.endswith("No space left on device")
    assert "Traceback" not in full.stderr
    survivors = {path: digest for path, digest in kept.items() if path not in missing}
    assert stored(out) == survivors  # nothing stored was lost or changed

    filler.unlink()
    again = prefect_server.snapshot("demo", "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert stored(out) == kept
    assert_store_is_clean(out)
