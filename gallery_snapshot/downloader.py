"""The download step: fetch links into staging, or reuse what the store already holds.

Each image is streamed to disk with connect/read timeouts and a size cap, hashed on the way,
and retried on its own (5xx, 429, resets, short bodies) without touching the rest of its
batch. Redirects are followed by hand so that no request ever leaves the allowed hosts, and
Imgur's redirect to ``removed.png`` reads as ``gone``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import posixpath
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import requests

from gallery_snapshot.catalog import Catalog
from gallery_snapshot.errors import StoreError
from gallery_snapshot.http import Backoff, Sleep, make_session, retry_after_seconds
from gallery_snapshot.models import FetchResult, Link, StoredImage
from gallery_snapshot.selection import host_of
from gallery_snapshot.store import Store, StoredFileProblem, safe_component, stored_relpath

CHUNK_SIZE = 64 * 1024
MAX_REDIRECTS = 5
REMOVED_PLACEHOLDER = "removed.png"

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class DownloadOptions:
    """How to download; plain data so it can travel to worker processes."""

    out_dir: str
    snapshot_id: str
    allowed_hosts: frozenset[str]
    timeout: float = 30.0
    max_bytes: int = 20 * 1024 * 1024
    attempts: int = 3
    threads: int = 1
    backoff: Backoff = field(default_factory=Backoff)


class Gone(Exception):
    """The image no longer exists (404/410, or a redirect to the removed placeholder)."""


class Refused(Exception):
    """Retrying cannot help: a disallowed redirect, an oversized body, another 4xx."""


class Transient(Exception):
    """Worth another try."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _open_stream(
    session: requests.Session, link: Link, options: DownloadOptions
) -> requests.Response:
    """GET ``link.url`` following at most ``MAX_REDIRECTS`` redirects within the allowed hosts."""
    url = link.url
    for _ in range(MAX_REDIRECTS + 1):
        response = session.get(
            url, stream=True, allow_redirects=False, timeout=(options.timeout, options.timeout)
        )
        if not response.is_redirect:
            return response
        response.close()
        target = urljoin(url, response.headers["Location"])
        if target.rsplit("/", 1)[-1].split("?")[0] == REMOVED_PLACEHOLDER:
            raise Gone("redirected to the removed-image placeholder")
        if urlsplit(target).scheme not in ("http", "https"):
            raise Refused(f"redirect to a non-http URL {target}")
        if host_of(target) not in options.allowed_hosts:
            raise Refused(f"redirect to host {host_of(target)} is not allowed")
        url = target
    raise Refused(f"more than {MAX_REDIRECTS} redirects")


def _check_status(response: requests.Response) -> None:
    status = response.status_code
    if status == 200:
        return
    if status in (404, 410):
        raise Gone(f"HTTP {status}")
    if status == 429 or status >= 500:
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        raise Transient(f"HTTP {status}", retry_after=retry_after)
    raise Refused(f"HTTP {status}")


def _stream_to(response: requests.Response, target: Path, max_bytes: int) -> tuple[str, int]:
    """Write the body to ``target``; return its sha256 and size. Stops at ``max_bytes``."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise Refused(f"larger than max-bytes ({declared} > {max_bytes})")
    digest = hashlib.sha256()
    size = 0
    with open(target, "wb") as handle:
        for chunk in response.iter_content(CHUNK_SIZE):
            size += len(chunk)
            if size > max_bytes:
                raise Refused(f"larger than max-bytes (over {max_bytes})")
            digest.update(chunk)
            handle.write(chunk)
        handle.flush()
        os.fsync(handle.fileno())  # durable before validation can promote it into the store
    return digest.hexdigest(), size


def staged_name(link: Link) -> str:
    """A staging (and quarantine) file name: unique in its snapshot by rank, readable by the
    link's own file name."""
    name = posixpath.basename(unquote(urlsplit(link.url).path))
    return f"{link.rank}-{safe_component(name, fallback='image')}"


def fetch_one(
    session: requests.Session,
    link: Link,
    store: Store,
    options: DownloadOptions,
    *,
    stored: StoredImage | None = None,
    sleep: Sleep = time.sleep,
) -> FetchResult:
    """Reuse ``stored``, the image the index holds for ``link``, once its file proves whole;
    otherwise download ``link`` into staging (with retries)."""
    if stored is not None:
        try:
            store.read_stored(
                stored_relpath(stored.sha256, stored.format),
                sha256=stored.sha256,
                size=stored.bytes,
            )
        except StoredFileProblem as exc:
            logger.warning("not reusing the stored copy of %s (%s): downloading it", link.url, exc)
        else:
            return FetchResult(
                link=link, status="reused", sha256=stored.sha256, bytes=stored.bytes, stored=stored
            )
    staged = store.staging_dir(options.snapshot_id) / staged_name(link)
    error = "no attempt made"
    for attempt in range(options.attempts):
        retry_after = None
        try:
            with _open_stream(session, link, options) as response:
                _check_status(response)
                sha256, size = _stream_to(response, staged, options.max_bytes)
            return FetchResult(
                link=link, status="fetched", path=str(staged), sha256=sha256, bytes=size
            )
        except Gone as exc:
            staged.unlink(missing_ok=True)
            return FetchResult(link=link, status="gone", error=str(exc))
        except Refused as exc:
            staged.unlink(missing_ok=True)
            return FetchResult(link=link, status="failed", error=str(exc))
        except Transient as exc:
            error, retry_after = str(exc), exc.retry_after
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {_short(exc)}"
        except OSError as exc:  # the disk, not the network: no image can be stored now
            staged.unlink(missing_ok=True)
            raise StoreError(f"cannot write to {staged.parent}: {exc.strerror}") from None
        staged.unlink(missing_ok=True)
        if attempt + 1 < options.attempts:
            sleep(options.backoff.delay(attempt, retry_after=retry_after))
    return FetchResult(
        link=link, status="failed", error=f"gave up after {options.attempts} attempts: {error}"
    )


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 200 else text[:197] + "..."


def fetch_batch(links: Iterable[Link], options: DownloadOptions) -> list[FetchResult]:
    """Fetch a batch over one connection pool with ``options.threads`` threads, in link order."""
    store = Store(options.out_dir)
    staging = store.staging_dir(options.snapshot_id)
    staging.mkdir(parents=True, exist_ok=True)
    links = list(links)
    known = Catalog(store.index_path).lookup(link.url for link in links)

    def fetch(link: Link) -> FetchResult:
        return fetch_one(session, link, store, options, stored=known.get(link.url))

    with make_session(pool_size=options.threads) as session:
        if options.threads <= 1:
            return [fetch(link) for link in links]
        with ThreadPoolExecutor(options.threads, thread_name_prefix="download") as pool:
            return list(pool.map(fetch, links))
