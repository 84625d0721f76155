"""An HTTP server on loopback whose content the test controls, by full URL: the same path
can answer differently on another port, host name or query."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Handler(BaseHTTPRequestHandler):
    server: ContentServer

    def do_GET(self) -> None:
        url = f"http://{self.headers.get('Host', '')}{self.path}"
        with self.server.lock:
            self.server.active += 1
            self.server.most_active = max(self.server.most_active, self.server.active)
        try:
            time.sleep(self.server.latency)
        finally:
            # Before the answer is written, not after: once its last byte is out, the client
            # may send its next request before this thread runs again (seen on a loaded
            # machine: one request more than the client's threads counted as active).
            with self.server.lock:
                self.server.active -= 1
        self._answer(url)

    def _answer(self, url: str) -> None:
        with self.server.lock:
            self.server.requests.append(url)
            body = self.server.files.get(url)
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class ContentServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, files: dict[str, bytes], host: str = "127.0.0.1") -> None:
        super().__init__((host, 0), _Handler)
        self.files = files  # shared with other servers of the same test
        self.requests: list[str] = []
        self.lock = threading.Lock()
        self.latency = 0.0  # seconds before each answer
        self.active = 0  # requests being answered now
        self.most_active = 0  # the most answered at once

    @property
    def port(self) -> int:
        return int(self.server_address[1])


@contextmanager
def content_servers(count: int, files: dict[str, bytes]) -> Iterator[list[ContentServer]]:
    """``count`` servers on free loopback ports, all answering from ``files`` (by URL)."""
    servers = [ContentServer(files) for _ in range(count)]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    try:
        yield servers
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
