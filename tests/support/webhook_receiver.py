"""A loopback webhook receiver: records every request it gets (the notifications' target)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.hostile_server import serving


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class _Handler(BaseHTTPRequestHandler):
    server: WebhookReceiver

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with self.server.lock:
            self.server.received.append(Received(self.command, self.path, body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_PUT = do_GET = _record

    def log_message(self, format: str, *args: Any) -> None:
        pass


class WebhookReceiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.received: list[Received] = []

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def wait_for(self, matches: Callable[[Received], bool], *, hang_bound: float = 180) -> Received:
        """The first request ``matches`` accepts; AssertionError (with what did arrive) when
        none came within ``hang_bound`` seconds (a bound on a hang, not a speed check)."""
        deadline = time.monotonic() + hang_bound
        while True:
            with self.lock:
                found = [request for request in self.received if matches(request)]
                seen = list(self.received)
            if found:
                return found[0]
            assert time.monotonic() < deadline, f"no matching request; received: {seen}"
            time.sleep(0.5)


def webhook_receiver() -> AbstractContextManager[WebhookReceiver]:
    return serving(WebhookReceiver())
