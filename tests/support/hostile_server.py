"""Hostile servers on loopback, writing raw bytes: answers that trickle, headers that do not
parse, redirects to any ``Location``, and a trap that only counts who connected to it."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

TRAP_HOST = "127.0.0.2"  # a loopback address no test allows


def response(status: str, body: bytes = b"", *headers: bytes) -> bytes:
    lines = [f"HTTP/1.1 {status}".encode(), *headers, b"Content-Length: %d" % len(body)]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class _Handler(socketserver.BaseRequestHandler):
    server: HostileServer

    def handle(self) -> None:
        self.server.note_connection()
        if self.server.trap:
            return
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = self.request.recv(65536)
            if not chunk:
                return
            request += chunk
        path = request.split(b" ", 2)[1].decode("latin-1")
        answer = self.server.routes.get(path, response("404 Not Found"))
        delay = self.server.trickle.get(path)
        try:
            if delay is None:
                self.request.sendall(answer)
                return
            start = answer.index(b"\r\n\r\n") + 4 if path in self.server.trickle_body else 0
            self.request.sendall(answer[:start])
            for byte in answer[start:]:
                self.request.sendall(bytes([byte]))
                time.sleep(delay)
        except OSError:
            pass  # the client gave up on us: what the tests want


class HostileServer(socketserver.ThreadingTCPServer):
    """Answers ``routes[path]`` (raw bytes, one connection per request); a path in ``trickle``
    is sent one byte per ``trickle[path]`` seconds (after the headers when the path is in
    ``trickle_body``). A ``trap`` server answers nothing."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str = "127.0.0.1", *, trap: bool = False) -> None:
        super().__init__((host, 0), _Handler)
        self.trap = trap
        self.routes: dict[str, bytes] = {}
        self.trickle: dict[str, float] = {}
        self.trickle_body: set[str] = set()
        self.connections = 0
        self._lock = threading.Lock()

    def note_connection(self) -> None:
        with self._lock:
            self.connections += 1

    @property
    def host(self) -> str:
        return str(self.server_address[0])

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], address: object
    ) -> None:
        pass


Server = TypeVar("Server", bound=socketserver.BaseServer)


@contextmanager
def serving(server: Server) -> Iterator[Server]:
    """``server`` serving in a thread of its own until the block ends."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
