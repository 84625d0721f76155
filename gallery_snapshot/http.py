"""HTTP plumbing shared by the API client and the downloader: a requests session for the
API, urllib3 pools for images, backoff, and deadlines that bound a whole exchange (a server
trickling bytes never holds a thread)."""

from __future__ import annotations

import contextlib
import http.client
import logging
import math
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.request import getproxies

import certifi
import requests
from requests.adapters import HTTPAdapter
from requests.utils import (
    get_auth_from_url,
    get_environ_proxies,
    select_proxy,
)
from urllib3 import PoolManager, ProxyManager, Timeout
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.response import BaseHTTPResponse, HTTPResponse
from urllib3.util import make_headers, parse_url

from gallery_snapshot import __version__

# Seconds per image (connect, reads, retries); each API request and each decoding get as long.
DEFAULT_DEADLINE = 120.0
USER_AGENT = f"gallery-snapshot/{__version__} (+https://github.com/gallery-snapshot)"

Sleep = Callable[[float], None]


def make_session(*, pool_size: int = 10) -> requests.Session:
    """A session with one connection pool sized for ``pool_size`` concurrent requests.

    urllib3's own retries stay off: retrying is decided by the caller, which knows which
    errors are permanent.
    """
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    adapter.poolmanager.pool_classes_by_scheme = {"http": _Pool, "https": _HTTPSPool}
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    # Without proxy variables there is nothing to trust the environment for, and trusting it
    # makes requests re-read them and ~/.netrc on every request (a tenth of download CPU).
    session.trust_env = bool(getproxies())
    return session


# What requests sends by default, so an image server sees the same request as before.
IMAGE_HEADERS = {
    **make_headers(keep_alive=True, accept_encoding=True, user_agent=USER_AGENT),
    "Accept": "*/*",
}


class ImageClient:
    """urllib3 connection pools for image GETs, one per host (a tenth of a millisecond of CPU
    less per image than requests, which the image hot path spends under the GIL). Proxies come
    from the environment as requests reads them (``*_proxy``, ``no_proxy``); certificates are
    checked against certifi's bundle, as requests does. Thread-safe."""

    def __init__(self, *, pool_size: int, proxies: dict[str, str]) -> None:
        # urllib3's own retries stay off, as for the API's sessions; pool_size connections
        # per host are kept for reuse (more may open at once; the extra ones are closed).
        self._options: dict[str, Any] = {
            "headers": IMAGE_HEADERS,
            "maxsize": pool_size,
            "block": False,
            "retries": False,
            "cert_reqs": "CERT_REQUIRED",
            "ca_certs": certifi.where(),
        }
        self._proxies = proxies
        self._direct = self._with_our_pools(PoolManager(**self._options))
        self._via: dict[str, PoolManager] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _with_our_pools(manager: PoolManager) -> PoolManager:
        manager.pool_classes_by_scheme = {"http": _Pool, "https": _HTTPSPool}
        return manager

    def _manager_for(self, url: str) -> PoolManager:
        if not self._proxies:
            return self._direct
        proxy = select_proxy(url, get_environ_proxies(url))
        if not proxy:
            return self._direct
        with self._lock:
            manager = self._via.get(proxy)
            if manager is None:
                parsed = parse_url(proxy)  # "host:port" means an http proxy, as for requests
                proxy_url = parsed._replace(scheme=parsed.scheme or "http").url
                username, password = get_auth_from_url(proxy_url)
                auth = make_headers(proxy_basic_auth=f"{username}:{password}") if username else {}
                manager = self._via[proxy] = self._with_our_pools(
                    ProxyManager(proxy_url, proxy_headers=auth, **self._options)
                )
        return manager

    def get(self, url: str, *, timeout: float) -> BaseHTTPResponse:
        """Send one GET for ``url`` (absolute; its host is the one urllib3's ``parse_url``
        reads, as the caller's checks do) and return the response, its body unread. No
        retries, no redirects followed: the caller decides both."""
        return self._manager_for(url).urlopen(
            "GET",
            url,
            redirect=False,
            retries=False,
            preload_content=False,
            timeout=Timeout(connect=timeout, read=timeout),
        )


# Idle connections kept per host by the process's client: as many as ``--workers`` allows, so
# concurrent batches sharing it never close each other's (an unused slot costs nothing).
KEPT_CONNECTIONS = 512

_shared: tuple[tuple[int, frozenset[tuple[str, str]]], ImageClient] | None = None
_shared_lock = threading.Lock()


def image_client() -> ImageClient:
    """This process's client for image GETs, with the environment's proxies. Batches share it,
    so a batch reuses the connections of the batches before it instead of reconnecting. A
    forked process, or a change of the proxy variables, gets a new one."""
    global _shared
    proxies = getproxies()
    key = (os.getpid(), frozenset(proxies.items()))
    with _shared_lock:
        if _shared is None or _shared[0] != key:
            _shared = (key, ImageClient(pool_size=KEPT_CONNECTIONS, proxies=proxies))
        return _shared[1]


class BodyTooLarge(Exception):
    """The body outgrew its cap; ``str()`` says by how much, as far as is known."""


CHUNK_SIZE = 64 * 1024


def read_body(response: BaseHTTPResponse, *, max_bytes: int, deadline: Deadline) -> Iterator[bytes]:
    """The body of ``response``, decoded, in chunks: ``BodyTooLarge`` once more than
    ``max_bytes`` arrived, decoded or on the wire (a declared ``Content-Length`` over it is
    refused unread), ``deadline.error()`` past the deadline. urllib3 decodes a bounded amount
    per read, so a compression bomb never sits in memory; one that decodes to nothing is
    cut by the deadline's watchdog."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge(f"{declared} > {max_bytes}")
    size = 0
    for chunk in response.stream(CHUNK_SIZE, decode_content=True):
        if deadline.expired:
            raise deadline.error()
        size += len(chunk)
        if size > max_bytes or response.tell() > max_bytes:
            raise BodyTooLarge(f"over {max_bytes}")
        yield chunk


class MalformedResponse(Exception):
    """The response's header block does not parse: its framing cannot be trusted. Not an
    ``OSError``, so that urllib3 and requests let it through unwrapped."""


class DeadlineExceeded(Exception):
    """The exchange outlived its ``Deadline``; ``str()`` says which."""


class Deadline:
    """A point in time by which an exchange must be over. Inside ``enforce(deadline)``, the
    socket of every response awaited on this thread through this module's pools (a
    ``make_session`` session's, an ``ImageClient``'s) is shut down when the deadline passes,
    however slowly its bytes arrive."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self._sockets: list[socket.socket] = []

    @property
    def remaining(self) -> float:
        return 0.0 if _ABORTED.is_set() else max(0.0, self.at - time.monotonic())

    @property
    def expired(self) -> bool:
        return _ABORTED.is_set() or time.monotonic() >= self.at

    def timeout(self, limit: float) -> float:
        """``limit`` (a per-read timeout), cut to what is left (never 0, which means no wait)."""
        return max(0.001, min(limit, self.remaining))

    def error(self) -> DeadlineExceeded:
        if _ABORTED.is_set():
            return DeadlineExceeded("aborted: the run was cancelled")
        return DeadlineExceeded(f"deadline of {self.seconds:g} s exceeded")

    def _watch(self, sock: socket.socket) -> None:
        with _WATCHDOG.lock:
            self._sockets.append(sock)
            if _ABORTED.is_set():
                self._cut()
            sooner = self.at < _WATCHDOG.wakes_at
        if sooner:
            _WATCHDOG.wake()

    def _cut(self) -> None:
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._sockets.clear()


class _Watchdog:
    """One daemon thread that cuts the sockets of deadlines as they pass. It is woken only by a
    deadline sooner than the one it waits for: with one ``--deadline`` for all, a new one is
    later, so the downloads do not wake it twice an image (as 64 download threads did)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._changed = threading.Event()
        self._deadlines: set[Deadline] = set()
        self._thread: threading.Thread | None = None
        self.wakes_at = -math.inf  # when the thread looks next (-inf: it is looking now)

    def add(self, deadline: Deadline) -> None:
        with self.lock:
            self._deadlines.add(deadline)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="deadlines", daemon=True)
                self._thread.start()

    def remove(self, deadline: Deadline) -> None:
        """Stop watching ``deadline``; its sockets may go back to the pool, uncut."""
        with self.lock:
            self._deadlines.discard(deadline)
            deadline._sockets.clear()

    def wake(self) -> None:
        self._changed.set()

    def _run(self) -> None:
        while True:
            with self.lock:
                self._changed.clear()
                passed = [d for d in self._deadlines if d.expired]
                for deadline in passed:
                    deadline._cut()
                watched = [d.at for d in self._deadlines if d._sockets]
                self.wakes_at = min(watched) if watched else math.inf
            self._changed.wait(max(0.0, self.wakes_at - time.monotonic()) if watched else None)
            with self.lock:
                self.wakes_at = -math.inf


_WATCHDOG = _Watchdog()
_local = threading.local()
_ABORTED = threading.Event()


def abort_exchanges() -> None:
    """End every exchange bounded by a ``Deadline`` in this process now, and every later one
    at once: a cancelled run must not wait for stuck downloads (up to their deadline)."""
    _ABORTED.set()
    with _WATCHDOG.lock:
        for deadline in _WATCHDOG._deadlines:
            deadline._cut()


@contextlib.contextmanager
def enforce(deadline: Deadline) -> Iterator[Deadline]:
    """Bound every response awaited on this thread in the block by ``deadline``."""
    _local.deadline = deadline
    _WATCHDOG.add(deadline)
    try:
        yield deadline
    finally:
        _local.deadline = None
        _WATCHDOG.remove(deadline)


def _awaited(sock: socket.socket, getresponse: Callable[[], HTTPResponse]) -> HTTPResponse:
    """Register ``sock`` with the thread's deadline before the response is awaited, and refuse
    a response whose header block does not parse (urllib3 only logs that)."""
    deadline: Deadline | None = getattr(_local, "deadline", None)
    if deadline is not None:
        deadline._watch(sock)
    response = getresponse()
    original = response._original_response
    if original is not None and original.msg.defects:
        response.close()
        raise MalformedResponse(f"response headers do not parse ({original.msg.defects[0]!r})")
    return response


# Informational responses a server may send before the final one (103 Early Hints, 102).
MAX_INFORMATIONAL = 20


class _Response(http.client.HTTPResponse):
    """http.client's response, past every informational (1xx) response that precedes the
    final one: http.client itself skips 100 Continue only, and would return a 103 as the
    answer (leaving the real one unread on the connection)."""

    def _read_status(self) -> tuple[str, int, str]:
        for _ in range(MAX_INFORMATIONAL + 1):
            version, status, reason = super()._read_status()  # type: ignore[misc]  # private
            if not 100 <= status < 200 or status == 101:  # 101: a final answer (no upgrade asked)
                return str(version), int(status), str(reason)
            http.client.parse_headers(self.fp)  # the informational response's headers: dropped
        raise MalformedResponse(f"more than {MAX_INFORMATIONAL} informational (1xx) responses")


class _HTTPConnection(HTTPConnection):
    response_class = _Response

    def getresponse(self) -> HTTPResponse:  # type: ignore[override]  # as urllib3 does
        return _awaited(self.sock, super().getresponse)


class _HTTPSConnection(HTTPSConnection):
    response_class = _Response

    def getresponse(self) -> HTTPResponse:  # type: ignore[override]  # as urllib3 does
        return _awaited(self.sock, super().getresponse)


class _Pool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _DropHeaderParsingTraceback(logging.Filter):
    """urllib3 logs unparseable headers with a traceback; ``MalformedResponse`` reports them."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Failed to parse headers")


logging.getLogger("urllib3.connection").addFilter(_DropHeaderParsingTraceback())


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """Exponential backoff with jitter: try ``n`` waits ``base * 2**n`` seconds, times 1 to
    ``1 + jitter``, never more than ``cap``."""

    base: float = 0.5
    cap: float = 30.0
    jitter: float = 0.5

    def delay(self, attempt: int, *, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(retry_after, self.cap)
        return min(self.cap, self.base * 2.0**attempt) * (1 + self.jitter * random.random())


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """Parse a ``Retry-After`` header (seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))
