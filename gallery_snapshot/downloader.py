"""The download step: fetch links into staging, or reuse what the store already holds.

Each image is streamed to disk with connect/read timeouts, a size cap and a total deadline,
hashed on the way, and retried on its own (5xx, 429, resets, short bodies) without touching
the rest of its batch. Redirects are followed by hand, and the host of every request sent
(as the HTTP client itself reads it) is checked against the allowed hosts; Imgur's redirect
to ``removed.png`` reads as ``gone``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import posixpath
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from urllib3.exceptions import HTTPError
from urllib3.response import BaseHTTPResponse

from gallery_snapshot.config import DEFAULT_DEADLINE
from gallery_snapshot.escaping import unlinked
from gallery_snapshot.http import (
    Backoff,
    BodyTooLarge,
    Deadline,
    DeadlineExceeded,
    ImageClient,
    MalformedResponse,
    Sleep,
    enforce,
    image_client,
    read_body,
    retry_after_seconds,
)
from gallery_snapshot.models import FetchResult, Link, StoredImage
from gallery_snapshot.selection import (
    UrlProblem,
    allowed_host_set,
    image_url,
    join_url,
    url_rejection,
)
from gallery_snapshot.store import SnapshotStore, StoredFileProblem, store_named
from gallery_snapshot.store.contract import BatchStaging, Received
from gallery_snapshot.store.files import safe_component, storage_error

MAX_REDIRECTS = 5
REMOVED_PLACEHOLDER = "removed.png"
# The reason a manifest gives for an image gone to the placeholder (the changes read it back).
PLACEHOLDER_REASON = "redirected to the removed-image placeholder"

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class DownloadOptions:
    """How to download; plain data so it can travel to worker processes."""

    out_dir: str
    snapshot_id: str
    allowed_hosts: frozenset[str]
    timeout: float = 30.0
    deadline: float = DEFAULT_DEADLINE  # seconds per image: connect, reads and retries
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


def _request(
    session: ImageClient, url: str, allowed: frozenset[str], deadline: Deadline, timeout: float
) -> BaseHTTPResponse:
    """Send one GET for ``url``, once its host is allowed. The URL goes to urllib3 as it was
    checked: the host checked (``url_rejection`` reads it with urllib3's ``parse_url``) is
    the host urllib3 connects to."""
    reason = url_rejection(url, allowed_hosts=allowed)
    if reason is not None:
        raise Refused(reason)
    try:
        return session.get(url, timeout=deadline.timeout(timeout))
    except ValueError as exc:  # urllib3's LocationParseError, a proxy's, http.client's InvalidURL
        raise Refused(f"malformed URL: {_short(exc)}") from None


def _open_stream(
    session: ImageClient, link: Link, options: DownloadOptions, deadline: Deadline
) -> BaseHTTPResponse:
    """GET ``link.url`` following at most ``MAX_REDIRECTS`` redirects within the allowed hosts."""
    allowed = allowed_host_set(options.allowed_hosts)
    url = link.url
    for _ in range(MAX_REDIRECTS + 1):
        response = _request(session, url, allowed, deadline, options.timeout)
        location = response.get_redirect_location()
        if not location:
            return response
        response.close()
        try:
            target = join_url(url, location)
        except UrlProblem as exc:
            raise Refused(str(exc)) from None
        if target.rsplit("/", 1)[-1].split("?")[0] == REMOVED_PLACEHOLDER:
            raise Gone(PLACEHOLDER_REASON)
        reason = url_rejection(target, allowed_hosts=allowed)
        if reason is not None:
            raise Refused(f"redirect to {reason}")
        url = target
    raise Refused(f"more than {MAX_REDIRECTS} redirects")


def _check_status(response: BaseHTTPResponse) -> None:
    status = response.status
    if status == 200:
        return
    if status in (404, 410):
        raise Gone(f"HTTP {status}")
    if status == 429 or status >= 500:
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        raise Transient(f"HTTP {status}", retry_after=retry_after)
    raise Refused(f"HTTP {status}")


def _stream_to(
    response: BaseHTTPResponse, sink: BinaryIO, max_bytes: int, deadline: Deadline
) -> tuple[str, int]:
    """Write the body to ``sink``; return its sha256 and size. Stops at ``max_bytes``."""
    digest = hashlib.sha256()
    size = 0
    try:
        for chunk in read_body(response, max_bytes=max_bytes, deadline=deadline):
            size += len(chunk)
            digest.update(chunk)
            sink.write(chunk)
    except BodyTooLarge as exc:
        raise Refused(f"larger than max-bytes ({exc})") from None
    return digest.hexdigest(), size


def staged_name(link: Link) -> str:
    """A staging (and quarantine) file name: unique in its snapshot by rank, readable by the
    link's own file name."""
    parsed = image_url(link.url)
    name = posixpath.basename(parsed.path) if parsed else ""
    return f"{link.rank}-{safe_component(name, fallback='image')}"


def fetch_one(
    session: ImageClient,
    link: Link,
    store: SnapshotStore,
    staging: Path,
    options: DownloadOptions,
    *,
    stored: StoredImage | None = None,
    sleep: Sleep = time.sleep,
) -> FetchResult:
    """Reuse ``stored``, the image the index holds for ``link``, once the store confirms it;
    otherwise download ``link`` into the folder ``staging`` (with retries)."""
    if stored is not None and (reused := _reuse(link, store, stored)) is not None:
        return reused
    staged = staging / staged_name(link)
    deadline = Deadline(options.deadline)
    error = "no attempt made"
    for attempt in range(options.attempts):
        if deadline.expired:  # aborted before this attempt
            return FetchResult(link=link, status="failed", error=str(deadline.error()))
        retry_after = None
        try:
            with enforce(deadline), _open_stream(session, link, options, deadline) as response:
                _check_status(response)
                # No fsync: validation syncs a batch once, before its images enter the index.
                with open(staged, "wb") as sink:
                    sha256, size = _stream_to(response, sink, options.max_bytes, deadline)
            # ``stored``: what this URL gave before, when its stored copy proved damaged.
            return FetchResult(
                link=link,
                status="fetched",
                path=str(staged),
                sha256=sha256,
                bytes=size,
                stored=stored,
            )
        except Gone as exc:
            staged.unlink(missing_ok=True)
            return FetchResult(link=link, status="gone", error=str(exc))
        except (Refused, DeadlineExceeded, MalformedResponse) as exc:
            staged.unlink(missing_ok=True)
            return FetchResult(link=link, status="failed", error=str(exc))
        except Transient as exc:
            error, retry_after = str(exc), exc.retry_after
        except HTTPError as exc:  # urllib3's: connection, read, protocol, TLS, proxy errors
            error = f"{type(exc).__name__}: {_short(exc)}"
        except OSError as exc:  # the disk, not the network: no image can be stored now
            staged.unlink(missing_ok=True)
            raise storage_error(f"cannot write to {staged.parent}", exc) from None
        staged.unlink(missing_ok=True)
        if deadline.expired:
            return FetchResult(link=link, status="failed", error=str(deadline.error()))
        if attempt + 1 < options.attempts:
            delay = options.backoff.delay(attempt, retry_after=retry_after)
            if delay >= deadline.remaining:
                return FetchResult(link=link, status="failed", error=str(deadline.error()))
            sleep(delay)
    return FetchResult(
        link=link, status="failed", error=f"gave up after {options.attempts} attempts: {error}"
    )


def _reuse(link: Link, store: SnapshotStore, stored: StoredImage) -> FetchResult | None:
    """``link`` reused from ``stored`` once the store confirms the copy; None when it is damaged
    or gone (the caller downloads the image again)."""
    try:
        store.confirm_reuse(stored)
    except StoredFileProblem as exc:
        logger.warning(
            "not reusing the stored copy of %s (%s): downloading it", unlinked(link.url), exc
        )
        return None
    return FetchResult(
        link=link, status="reused", sha256=stored.sha256, bytes=stored.bytes, stored=stored
    )


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 200 else text[:197] + "..."


# The process's download threads, one pool per thread count asked for.
_download_pools: dict[int, ThreadPoolExecutor] = {}
_download_pools_lock = threading.Lock()


def _forget_download_pools() -> None:
    """In a forked child: the pools' threads were not copied, and the lock may be held."""
    global _download_pools_lock
    _download_pools.clear()
    _download_pools_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_download_pools)


def submit_downloads(
    fetch: Callable[[Link], FetchResult], links: list[Link], *, threads: int
) -> list[Future[FetchResult]]:
    """Queue ``fetch`` of each link on the process's ``threads`` download threads, shared by
    every batch running in it with that count (as its connection pool is): while one batch's
    last images are in flight, the next batch's fill the idle threads, so a batch's end leaves
    no thread waiting. A batch's images queue together, so batches end in order. Batches
    asking for another count get a pool of their own; a pool lives as long as its process."""
    with _download_pools_lock:
        pool = _download_pools.get(threads)
        if pool is None:
            pool = ThreadPoolExecutor(threads, thread_name_prefix=f"download-{threads}")
            _download_pools[threads] = pool
        return [pool.submit(fetch, link) for link in links]


def fetch_batch(
    links: Iterable[Link], options: DownloadOptions, *, known: dict[str, StoredImage] | None = None
) -> list[FetchResult]:
    """Fetch a batch on the process's ``options.threads`` download threads over its
    connection pools, in link order, into the store's staging for the batch. ``known``: the
    stored images of the batch's URLs, when the run looked them up once for all its batches
    (else the batch asks the index); a dead run's whole download is adopted, not fetched."""
    store = store_named(options.out_dir)
    links = list(links)
    with store.batch_staging(options.snapshot_id) as staging:
        if known is None:
            known = store.index.lookup(link.url for link in links)
        fetched = _fetch_all(links, options, store, staging, known)
        return [staging.handed_on(result) for result in fetched]


def _fetch_all(
    links: list[Link],
    options: DownloadOptions,
    store: SnapshotStore,
    staging: BatchStaging,
    known: dict[str, StoredImage],
) -> list[FetchResult]:
    adoptable = staging.adoptable()

    def fetch(link: Link) -> FetchResult:
        received = adoptable.get(link.url)
        # Adopted only within today's limits, like a download.
        if link.url not in known and received and received.bytes <= options.max_bytes:
            target = staging.folder / staged_name(link)
            if staging.adopt(received, target):  # a dead run's whole download: no request
                return FetchResult(
                    link=link,
                    status="fetched",
                    path=str(target),
                    sha256=received.sha256,
                    bytes=received.bytes,
                )
        result = fetch_one(
            session, link, store, staging.folder, options, stored=known.get(link.url)
        )
        if result.status == "fetched":
            assert result.path and result.sha256 and result.bytes is not None
            staging.record(
                link.url,
                Received(path=Path(result.path), sha256=result.sha256, bytes=result.bytes),
            )
        return result

    session = image_client()  # the process's: its connections outlive the batch
    futures = submit_downloads(fetch, links, threads=max(1, options.threads))
    try:
        return [future.result() for future in futures]
    except BaseException:
        # None of this batch's downloads may outlive it: a retry of the batch would write
        # the same staging files.
        for future in futures:
            future.cancel()
        wait(futures)
        raise
