"""The image client: proxies from the environment, as requests honoured them; connections
kept across batches."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gallery_snapshot.downloader import DownloadOptions, fetch_batch
from gallery_snapshot.http import Backoff
from gallery_snapshot.models import FetchResult, Link
from tests.support.hostile_server import TRAP_HOST, HostileServer, response, serving
from tests.support.images import image_bytes

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture
def no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
def server() -> Iterator[HostileServer]:
    with serving(HostileServer()) as running:
        yield running


@pytest.fixture
def trap() -> Iterator[HostileServer]:
    with serving(HostileServer(TRAP_HOST, trap=True)) as running:
        yield running


def fetch_one_url(url: str, host: str, out: Path) -> FetchResult:
    options = DownloadOptions(
        out_dir=str(out),
        snapshot_id="s",
        allowed_hosts=frozenset({host}),
        timeout=5.0,
        attempts=1,
        backoff=Backoff(base=0.0, cap=0.0, jitter=0.0),
    )
    [result] = fetch_batch([Link(url=url, id="a", rank=1, type="image/jpeg")], options)
    return result


@pytest.mark.usefixtures("no_proxy_settings")
def test_images_go_through_the_environments_proxy(
    server: HostileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # images.invalid never resolves: only the proxy can answer for it.
    server.routes["http://images.invalid/a.jpg"] = response("200 OK", image_bytes(1))
    monkeypatch.setenv("http_proxy", server.base_url)
    result = fetch_one_url("http://images.invalid/a.jpg", "images.invalid", tmp_path)
    assert (result.status, result.bytes) == ("fetched", len(image_bytes(1)))
    assert server.connections == 1


@pytest.mark.usefixtures("no_proxy_settings")
def test_no_proxy_hosts_are_reached_directly(
    server: HostileServer, trap: HostileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.routes["/a.jpg"] = response("200 OK", image_bytes(2))
    monkeypatch.setenv("http_proxy", trap.base_url)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    result = fetch_one_url(f"{server.base_url}/a.jpg", "127.0.0.1", tmp_path)
    assert result.status == "fetched"
    assert trap.connections == 0


class _CountingServer(ThreadingHTTPServer):
    daemon_threads = True
    connections = 0


class _KeepAliveHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _CountingServer

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1  # one handler per connection

    def do_GET(self) -> None:
        body = image_bytes(3)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.usefixtures("no_proxy_settings")
def test_batches_reuse_the_connections_of_the_batches_before(tmp_path: Path) -> None:
    server = _CountingServer(("127.0.0.1", 0), _KeepAliveHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        for name in ("a.jpg", "b.jpg", "c.jpg"):  # three batches, one after the other
            assert fetch_one_url(f"{base}/{name}", "127.0.0.1", tmp_path).status == "fetched"
        assert server.connections == 1
    finally:
        server.shutdown()
        server.server_close()


EARLY_HINTS = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"


@pytest.mark.usefixtures("no_proxy_settings")
def test_informational_responses_before_the_image_are_skipped(
    server: HostileServer, tmp_path: Path
) -> None:
    processing = b"HTTP/1.1 102 Processing\r\n\r\n"
    server.routes["/a.jpg"] = (
        EARLY_HINTS + processing + EARLY_HINTS + response("200 OK", image_bytes(4))
    )
    result = fetch_one_url(f"{server.base_url}/a.jpg", "127.0.0.1", tmp_path)
    assert (result.status, result.error, result.bytes) == ("fetched", None, len(image_bytes(4)))
    staged = Path(result.path or "")
    assert staged.read_bytes() == image_bytes(4)


@pytest.mark.usefixtures("no_proxy_settings")
def test_endless_informational_responses_fail_the_image(
    server: HostileServer, tmp_path: Path
) -> None:
    server.routes["/a.jpg"] = EARLY_HINTS * 1000 + response("200 OK", image_bytes(5))
    result = fetch_one_url(f"{server.base_url}/a.jpg", "127.0.0.1", tmp_path)
    assert (result.status, result.error) == (
        "failed",
        "more than 20 informational (1xx) responses",
    )
