"""Nothing hangs: a server trickling bytes, or sending headers urllib3 cannot parse, costs one
image its deadline at most, never its batch."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gallery_snapshot.config import SnapshotConfig
from gallery_snapshot.demo_gallery import DemoGallery
from gallery_snapshot.downloader import DownloadOptions, fetch_batch
from gallery_snapshot.http import Backoff
from gallery_snapshot.models import FetchResult, Link
from tests.support.hostile_server import HostileServer, response, serving
from tests.support.images import image_bytes


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    with serving(HostileServer()) as server:
        server.routes["/ok.jpg"] = response("200 OK", image_bytes(1))
        server.routes["/trickle.jpg"] = response("200 OK", image_bytes(2))
        server.routes["/bad-header.jpg"] = (
            b"HTTP/1.1 200 OK\r\nX-Broken header without colon\r\nContent-Length: 5\r\n\r\nhello"
        )
        yield server


def fetch(server: HostileServer, out: Path, *paths: str, **extra: object) -> list[FetchResult]:
    links = [
        Link(url=f"{server.base_url}{path}", id=str(rank), rank=rank, type="image/jpeg")
        for rank, path in enumerate(paths, start=1)
    ]
    values: dict[str, object] = {
        "out_dir": str(out),
        "snapshot_id": "s",
        "allowed_hosts": frozenset({"127.0.0.1"}),
        "timeout": 5.0,
        "attempts": 3,
        "threads": 2,
        "backoff": Backoff(base=0.0, cap=0.0, jitter=0.0),
        **extra,
    }
    return fetch_batch(links, DownloadOptions(**values))  # type: ignore[arg-type]


@pytest.mark.parametrize("what", ["body", "headers"])
def test_a_trickling_server_costs_one_image_its_deadline(
    hostile: HostileServer, tmp_path: Path, what: str
) -> None:
    hostile.trickle["/trickle.jpg"] = 0.2  # one byte every 0.2 s, each well within --timeout
    if what == "body":
        hostile.trickle_body.add("/trickle.jpg")
    started = time.monotonic()
    trickled, ok = fetch(hostile, tmp_path, "/trickle.jpg", "/ok.jpg", deadline=1.0)
    elapsed = time.monotonic() - started
    assert (trickled.status, trickled.error) == ("failed", "deadline of 1 s exceeded")
    assert ok.status == "fetched"
    assert elapsed < 30  # not a speed check: the whole trickle would take minutes


def test_headers_urllib3_cannot_parse_fail_the_image_at_once_without_a_traceback(
    hostile: HostileServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    started = time.monotonic()
    broken, ok = fetch(hostile, tmp_path, "/bad-header.jpg", "/ok.jpg", timeout=30.0)
    assert time.monotonic() - started < 25  # not a speed check: the stall was 30 s
    assert broken.status == "failed"
    assert (broken.error or "").startswith("response headers do not parse")
    assert ok.status == "fetched"
    assert not [record for record in caplog.records if record.exc_info]


def test_the_deadline_is_a_config_field_and_a_download_option() -> None:
    assert SnapshotConfig().deadline == 120
    assert SnapshotConfig(deadline=5).deadline == 5
    assert DownloadOptions(out_dir="o", snapshot_id="s", allowed_hosts=frozenset()).deadline == 120


def test_the_demo_gallery_can_trickle_and_send_broken_headers(
    gallery: DemoGallery, tmp_path: Path
) -> None:
    gallery.state.faults["/Jpg001.jpg"] = ["trickle=0.2"]
    gallery.state.faults["/Jpg002.jpg"] = ["bad-header"]
    links = [
        Link(url=f"{gallery.base_url}/{name}", id=name, rank=rank, type="image/jpeg")
        for rank, name in enumerate(["Jpg001.jpg", "Jpg002.jpg", "Jpg003.jpg"], start=1)
    ]
    options = DownloadOptions(
        out_dir=str(tmp_path),
        snapshot_id="s",
        allowed_hosts=frozenset({gallery.image_host}),
        deadline=1.0,
        threads=3,
    )
    started = time.monotonic()
    trickled, broken, ok = fetch_batch(links, options)
    assert time.monotonic() - started < 30  # not a speed check: a trickle takes minutes
    assert (trickled.status, trickled.error) == ("failed", "deadline of 1 s exceeded")
    assert broken.status == "failed"
    assert (broken.error or "").startswith("response headers do not parse")
    assert ok.status == "fetched"


def test_a_shorter_deadline_after_a_longer_one_is_kept(
    hostile: HostileServer, tmp_path: Path
) -> None:
    # The watchdog sleeps until the soonest deadline it knows and is woken only by a sooner
    # one: a 1 s deadline arriving while it waits out a 6 s one must be cut at 1 s, not 6 s.
    hostile.trickle["/trickle.jpg"] = 0.2
    hostile.trickle_body.add("/trickle.jpg")
    with ThreadPoolExecutor(1) as other_snapshot:
        longer = other_snapshot.submit(fetch, hostile, tmp_path / "a", "/trickle.jpg", deadline=6.0)
        time.sleep(0.5)  # the 6 s deadline is watched now
        started = time.monotonic()
        [shorter] = fetch(hostile, tmp_path / "b", "/trickle.jpg", deadline=1.0)
        elapsed = time.monotonic() - started
        [first] = longer.result()
    assert (shorter.status, shorter.error) == ("failed", "deadline of 1 s exceeded")
    assert (first.status, first.error) == ("failed", "deadline of 6 s exceeded")
    assert elapsed < 4, elapsed  # not a speed check: the 6 s deadline would end it at ~5.5 s
