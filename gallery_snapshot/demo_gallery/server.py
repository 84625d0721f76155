"""An Imgur-compatible HTTP server over loopback: the API (``/3/...``) and the image host.

It honours what ``shared/imgur-api.md`` records: the response envelope, both auth errors,
paging that ends with an empty page, tag pages wrapped in ``items``, albums with and without
embedded images, rate-limit headers and 429s, and deleted images as a redirect to
``removed.png``. Faults can be injected per path and per attempt, and every request is
logged, so tests can check what the client did.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from gallery_snapshot.demo_gallery.content import (
    Catalogue,
    DemoImage,
    image_bytes,
    removed_placeholder,
)

DEMO_CLIENT_ID = "demo-client-id"
SECTIONS = {"hot", "top", "user"}
SORTS = {"viral", "top", "time", "rising"}
WINDOWS = {"day", "week", "month", "year", "all"}
# Faults, consumed one per request to their path, in order:
#   "500" (any 4xx/5xx status), "429+retry-after=N", "over-capacity" (Imgur's transient 403),
#   "reset" (connection closed, no answer), "short-body" (body shorter than Content-Length),
#   "slow=SECONDS" (delay, then answer normally), "html" (an HTML page with status 200),
#   "redirect=URL", "chunked=BYTES" (a body of BYTES without Content-Length),
#   "json=TEXT" (answer TEXT as the API's JSON body), "trickle=SECONDS" (the image's body one
#   byte per SECONDS), "bad-header" (a header line urllib3 cannot parse, then the image),
#   "error=STATUS:MESSAGE" (an API error of that status saying MESSAGE).
_FAULT = re.compile(r"^(\d{3})(\+retry-after=(\d+))?$")


@dataclass
class GalleryState:
    """What the server serves and remembers. Tests mutate ``faults`` between runs."""

    catalogue: Catalogue
    client_id: str = DEMO_CLIENT_ID
    latency: float = 0.0  # seconds before each image response
    client_limit: int = 12_500
    faults: dict[str, list[str]] = field(default_factory=dict)
    requests: list[tuple[str, int | str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    spent: int = 0

    def next_fault(self, path: str) -> str | None:
        with self.lock:
            queue = self.faults.get(path)
            return queue.pop(0) if queue else None

    def log(self, path: str, outcome: int | str) -> None:
        with self.lock:
            self.requests.append((path, outcome))

    def requests_for(self, path: str) -> list[int | str]:
        with self.lock:
            return [outcome for logged, outcome in self.requests if logged == path]

    def spend_credit(self) -> int:
        with self.lock:
            self.spent += 1
            return self.client_limit - self.spent


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle's algorithm on, a keep-alive client's
    # delayed ACK would add its delay (tens of milliseconds) to every response.
    disable_nagle_algorithm = True
    server: DemoGalleryServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log in GalleryState replaces stderr noise

    def do_GET(self) -> None:
        state = self.server.state
        path = urlsplit(self.path).path
        fault = state.next_fault(path)
        if fault is not None and self._inject(path, fault):
            return
        if path.startswith("/3/"):
            self._api(path[3:])
        else:
            self._image(path)

    # -- faults ---------------------------------------------------------------------------
    def _inject(self, path: str, fault: str) -> bool:
        """Apply ``fault``; True when it answered the request itself."""
        state = self.server.state
        state.log(path, fault)
        if fault.startswith("slow="):
            time.sleep(float(fault.partition("=")[2]))
            return False
        if fault == "reset":
            self.close_connection = True
            self.connection.shutdown(2)
            return True
        if fault == "short-body":
            body = image_bytes(DemoImage("Short"))
            self._send(200, body[: len(body) // 2], "image/jpeg", length=len(body))
            self.close_connection = True
            return True
        if fault == "html":
            self._send(200, b"<html><body>an error page</body></html>", "text/html")
            return True
        if fault.startswith("chunked="):
            self._send_chunked(b"\xff\xd8" + bytes(int(fault.partition("=")[2])))
            return True
        if fault.startswith("trickle="):
            self._trickle(image_bytes(DemoImage("Trickle")), float(fault.partition("=")[2]))
            return True
        if fault == "bad-header":
            self._send(
                200,
                image_bytes(DemoImage("BadHeader")),
                "image/jpeg",
                headers={"X-Broken header": ""},
            )
            return True
        if fault.startswith("json="):
            self._send(200, fault.partition("=")[2].encode(), "application/json")
            return True
        if fault.startswith("redirect="):
            self._redirect(fault.partition("=")[2])
            return True
        if fault.startswith("error="):
            status, _, message = fault.partition("=")[2].partition(":")
            self._api_error(int(status), message, path)
            return True
        if fault == "over-capacity":
            self._api_error(
                403, "Imgur is temporarily over capacity. Please try again later.", path
            )
            return True
        match = _FAULT.match(fault)
        if not match:
            raise ValueError(f"unknown fault {fault!r}")
        headers = {"Retry-After": match.group(3)} if match.group(3) else {}
        self._api_error(int(match.group(1)), "injected fault", path, headers=headers)
        return True

    # -- API ------------------------------------------------------------------------------
    def _api(self, route: str) -> None:
        state = self.server.state
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Client-ID "):
            return self._api_error(403, "Malformed auth header", route)
        if auth.removeprefix("Client-ID ") != state.client_id:
            return self._api_error(403, "Invalid client_id", route)
        remaining = state.spend_credit()
        if remaining < 0:
            return self._api_error(429, "Too Many Requests", route, remaining=0)
        data = self._route(route.strip("/").split("/"))
        if data is None:
            return self._api_error(404, f"Unable to find {route}", route, remaining=remaining)
        self._api_send(200, {"data": data, "success": True, "status": 200}, route, remaining)

    def _route(self, parts: list[str]) -> Any:
        catalogue = self.server.state.catalogue
        base = self.server.image_base
        match parts:
            case ["gallery", "r", _subreddit, *rest] | ["gallery", "t", _subreddit, *rest]:
                page = self._page(rest)
                if page is None:
                    return None
                return {"items": page} if parts[1] == "t" else page
            case ["gallery", "random", *_]:
                return None  # deprecated at Imgur: no longer answers
            case ["gallery", section, *rest] if section in SECTIONS:
                return self._page(rest)
            case ["album", album_id]:
                album = catalogue.albums.get(album_id)
                return album.item(base, with_images=True) if album else None
            case ["album", album_id, "images"]:
                album = catalogue.albums.get(album_id)
                return [image.item(base) for image in album.images] if album else None
            case ["image", image_id]:
                image = catalogue.images.get(image_id)
                return image.item(base) if image else None
        return None

    def _page(self, rest: list[str]) -> list[dict[str, Any]] | None:
        """Listing page for ``[sort][/window]/page``; None for a malformed path."""
        if not rest or not rest[-1].isdigit():
            return None
        options = rest[:-1]
        if len(options) > 2 or any(o not in SORTS | WINDOWS for o in options):
            return None
        pages = self.server.state.catalogue.pages
        page = int(rest[-1])
        items = pages[page] if page < len(pages) else []
        base = self.server.image_base
        return [item.item(base) for item in items]

    def _api_error(
        self,
        status: int,
        message: str,
        route: str,
        *,
        headers: dict[str, str] | None = None,
        remaining: int | None = None,
    ) -> None:
        body = {
            "data": {"error": message, "request": f"/3/{route.lstrip('/')}", "method": "GET"},
            "success": False,
            "status": status,
        }
        self._api_send(status, body, route, remaining, headers=headers)

    def _api_send(
        self,
        status: int,
        body: dict[str, Any],
        route: str,
        remaining: int | None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        state = self.server.state
        limits = {
            "X-RateLimit-ClientLimit": str(state.client_limit),
            "X-RateLimit-UserLimit": "2000",
            "X-RateLimit-UserRemaining": "1999",
            "X-RateLimit-UserReset": "3600",
        }
        if remaining is not None:
            limits["X-RateLimit-ClientRemaining"] = str(max(0, remaining))
        state.log(f"/3/{route.lstrip('/')}", status)
        payload = json.dumps(body).encode()
        self._send(status, payload, "application/json", headers={**limits, **(headers or {})})

    # -- image host -----------------------------------------------------------------------
    def _image(self, path: str) -> None:
        state = self.server.state
        if path == "/removed.png":
            state.log(path, 200)
            return self._send(200, removed_placeholder(), "image/png")
        image = state.catalogue.image_for_path(path)
        if state.latency:
            time.sleep(state.latency)
        if image is None or image.body == "missing":
            state.log(path, 404)
            return self._send(404, b"not found", "text/plain")
        if image.body == "deleted":
            state.log(path, 302)
            return self._redirect(f"{self.server.image_base}/removed.png")
        if image.body == "failing":
            state.log(path, 503)
            # "Retry at once": the demo shows Retry-After honoured without waiting on it.
            headers = {"Retry-After": "0"}
            return self._send(503, b"upstream unavailable", "text/plain", headers=headers)
        state.log(path, 200)
        content_type = "text/html" if image.body == "html" else f"image/{image.ext}"
        self._send(200, image_bytes(image), content_type)

    def _send_chunked(self, body: bytes, chunk: int = 16384) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for start in range(0, len(body), chunk):
                part = body[start : start + chunk]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _trickle(self, body: bytes, delay: float) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.close_connection = True
        try:
            for byte in body:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(delay)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _redirect(self, location: str) -> None:
        self._send(302, b"", "text/plain", headers={"Location": location})

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        *,
        headers: dict[str, str] | None = None,
        length: int | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class DemoGalleryServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, state: GalleryState, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__((host, port), _Handler)
        self.state = state
        self.image_base = f"http://{host}:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-answer (a timeout, a killed run) is routine here; the
        # stdlib would print a traceback for it. Anything else is a bug worth one line.
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError | TimeoutError):
            print(f"demo gallery: error serving {client_address}: {error!r}", file=sys.stderr)


__all__ = ["DEMO_CLIENT_ID", "DemoGalleryServer", "GalleryState"]
