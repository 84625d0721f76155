"""The store on object storage: ``s3://BUCKET/PREFIX`` (and ``gs://``, ``az://``, ``file://``).

Same layout as the local store, so the same manifests and paths describe both: images under
``images/ab/cd/<sha256>.<ext>``, each put by one PUT of its whole, validated content (an object
store has no rename, and a content name never needs one); ``snapshots/<id>/manifest.json``
written last. No SQLite on an object store: the URL index is one zero-byte object per URL under
``index/``, its key carrying what a reuse needs (``index/<url hash>/<sha256>.<FORMAT>.<bytes>.
<width>x<height>``), so one LIST of ``index/`` and one of ``images/`` answer every reuse
question of a run: O(listing pages), never a request per image.

Built on obstore (Rust ``object_store``): one small dependency for S3, GCS, Azure and local
files, conditional PUTs (for locks), and several times less CPU per request than s3fs's
aiobotocore. Credentials and endpoint come from the standard environment only
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``, ``AWS_REGION``, …);
the URL names a place, never a secret.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

import obstore
from obstore.exceptions import AlreadyExistsError, BaseError, NotFoundError
from obstore.store import from_url

from gallery_snapshot.catalog import url_key
from gallery_snapshot.errors import ConfigError, StoreError
from gallery_snapshot.models import ImageRecord, StoredImage
from gallery_snapshot.store import (
    STORED_PATH,
    StoredFileProblem,
    is_stored_relpath,
    nested_store,
    stored_relpath,
)

OBJECT_SCHEMES = frozenset({"s3", "s3a", "gs", "az", "azure", "abfs", "abfss", "adl", "file"})
INDEX_PREFIX = "index/"
LOCK_PREFIX = "locks/"
PRUNE_LOCK = "locks/prune"
# A live lock is put again every LOCK_REFRESH; one not refreshed for STALE_LOCK is a killed
# run's leftover (an object store has no lock that dies with its process, as flock does).
LOCK_REFRESH = timedelta(minutes=1)
STALE_LOCK = timedelta(minutes=10)
PRUNE_POLL_SECONDS = 2.0
# What a store keeps at its top: what its snapshots and prunes write and delete.
OWN_PREFIXES = frozenset({"images", "index", "snapshots", "quarantine", "locks"})
# The lock keys this tool writes (snapshot ids are letters, digits and dashes); anything
# else under locks/ is someone else's and blocks nothing.
_LOCK_KEY = re.compile(r"^locks/(?:prune|snapshot-[A-Za-z0-9-]{1,64})$")
_INDEX_ENTRY = re.compile(
    r"^index/([0-9a-f]{64})/([0-9a-f]{64})\.([A-Z0-9]{2,8})\.(\d+)\.(\d+)x(\d+)"
    r"(?:\.([A-Za-z0-9]{1,64}))?$"
)


# What a browser takes an object for when the store is served: pages, manifests and images
# (validated, so their extension is their format) by their extension; anything else, such as
# a quarantined download whatever its name says, as bytes (S3's own default).
_CONTENT_TYPES = {
    "html": "text/html; charset=utf-8",
    "json": "application/json",
    "jpg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "webp": "image/webp",
}
_BYTES = "application/octet-stream"


def content_type(key: str) -> str:
    """The ``Content-Type`` an object of the store is put with."""
    if key.startswith(("images/", "snapshots/")):
        return _CONTENT_TYPES.get(key.rpartition(".")[2], _BYTES)
    return _BYTES


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")  # two letters at least: not a drive letter
_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def names_a_url(out_dir: str) -> bool:
    """Whether ``out_dir`` is written as a URL (``s3://…``, ``file:…``), supported or not,
    rather than a folder: a URL never silently becomes a folder named ``http:``."""
    return bool(_URL.match(out_dir)) and ("://" in out_dir or out_dir.lower().startswith("file:"))


def is_object_url(out_dir: str) -> bool:
    """Whether ``out_dir`` names an object store (``s3://…``) rather than a local folder."""
    return names_a_url(out_dir) and urlsplit(out_dir).scheme.lower() in OBJECT_SCHEMES


def check_object_url(url: str) -> str:
    """``url`` as the store's canonical URL (no trailing slash), or a one-line ValueError."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in OBJECT_SCHEMES:
        raise ValueError(
            f"{scheme}:// is not a store this tool writes to: use a folder, s3://BUCKET/PREFIX, "
            "gs://BUCKET/PREFIX, az://ACCOUNT/CONTAINER/PREFIX or file:///ABSOLUTE/PATH"
        )
    if "@" in parts.netloc or parts.query or parts.fragment:
        raise ValueError(
            "an object-store URL names a bucket and prefix only "
            "(credentials come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, never the URL)"
        )
    if any(part in (".", "..") for part in parts.path.split("/")):
        raise ValueError(f"'.' and '..' are not allowed in {url}")
    if not all(char.isprintable() for char in url) or "%" in url:
        raise ValueError(f"{url!r}: control characters and %-escapes are not allowed")
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or not url[5:].startswith("//"):
            raise ValueError(f"{url}: a file URL is file:///ABSOLUTE/PATH")
        if not parts.path.strip("/"):
            raise ValueError(f"{url}: not the file system's root; name a folder below it")
        return url.rstrip("/")
    if not _BUCKET.match(parts.netloc):
        raise ValueError(
            f"{url}: expected {scheme}://BUCKET/PREFIX (a bucket name, no port: the endpoint "
            "comes from AWS_ENDPOINT_URL)"
        )
    return url.rstrip("/")


def _one_line(exc: BaseException) -> str:
    """obstore's messages carry a multi-line debug dump: keep the first line, without the
    service's XML body."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = _redacted(text.split(": <?xml", 1)[0])
    text = "".join(char if char.isprintable() else "?" for char in text)
    return text if len(text) <= 300 else text[:297] + "..."


_USERINFO = re.compile(r"(?<=//)[^/@\s]*@")


def _redacted(text: str) -> str:
    """``text`` without the ``user:password@`` of any URL in it."""
    return _USERINFO.sub("***@", text)


def _check_aws_settings() -> None:
    """StoreError naming an ``AWS_*`` variable that holds a control character (a newline):
    the Rust client would panic on it, printing its own report before any error of ours.
    The value is never shown (it may be a secret)."""
    for name, value in sorted(os.environ.items()):
        if name.startswith("AWS_") and not value.isprintable():
            raise StoreError(
                f"{name} holds a control character (a newline?), which no AWS setting has: "
                "set it again without one"
            )


def _checked_endpoint() -> str | None:
    """The S3 endpoint from the environment, once it is a URL the client can use (a malformed
    one makes the Rust client panic); StoreError otherwise."""
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        if (endpoint := os.environ.get(name)) is None:
            continue
        try:
            parts = urlsplit(endpoint)
            usable = (
                parts.scheme in ("http", "https")
                and bool(parts.hostname)
                and (parts.port is None or parts.port > 0)
            )
        except ValueError:  # a bad port or IPv6 literal
            usable = False
        if not usable:
            raise StoreError(
                f"{name}={_redacted(endpoint)!r} is not an endpoint: expected "
                "http(s)://HOST[:PORT], e.g. http://127.0.0.1:9000"
            )
        return endpoint
    return None


_STATUS = re.compile(r"status code: (\d{3})")
_CREDENTIALS = {
    "s3": "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    "gs": "GOOGLE_SERVICE_ACCOUNT (or GOOGLE_APPLICATION_CREDENTIALS)",
    "az": "AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY",
}
_UNREACHABLE = ("error sending request", "Connection refused", "dns error", "timed out")


def describe_failure(url: str, exc: BaseException) -> str:
    """One line a person can act on, from obstore's long debug text."""
    text = _one_line(exc)
    status = _STATUS.search(str(exc))
    code = int(status.group(1)) if status else None
    if code in (401, 403) or "InvalidAccessKeyId" in text or "SignatureDoesNotMatch" in text:
        credentials = _CREDENTIALS.get(urlsplit(url).scheme.lower(), _CREDENTIALS["s3"])
        return f"access to {url} refused (HTTP {code or 403}): check {credentials}"
    if code == 404 or "NoSuchBucket" in text:
        return f"{url}: no such bucket (HTTP 404)"
    if any(sign in str(exc) for sign in _UNREACHABLE):
        endpoint = os.environ.get("AWS_ENDPOINT_URL") or "the default endpoint"
        return f"cannot reach the object store of {url} at {_redacted(endpoint)}: {text}"
    return f"cannot use {url}: {text}"


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime
    version: str


def version_token(etag: str | None) -> str:
    """An object's ETag as a key-safe token: it changes whenever the object is written
    again, so an image damaged in place (same size) is not reused."""
    return re.sub(r"[^A-Za-z0-9]", "", etag or "")[:64]


def url_hash(url: str) -> str | None:
    """An image URL's name in the index: the sha256 of its normalized form (None for a URL
    that is never requested, see ``url_key``)."""
    key = url_key(url)
    return None if key is None else hashlib.sha256(key.encode("utf-8")).hexdigest()


def index_key(url: str, image: StoredImage, *, version: str = "") -> str | None:
    digest = url_hash(url)
    if digest is None:
        return None
    key = (
        f"{INDEX_PREFIX}{digest}/{image.sha256}.{image.format}.{image.bytes}."
        f"{image.width}x{image.height}"
    )
    return f"{key}.{version}" if version else key


def parse_index_key(key: str) -> tuple[str, StoredImage, str] | None:
    """(url hash, image, version of its object) of an index key; None for a key of another
    shape."""
    match = _INDEX_ENTRY.match(key)
    if match is None:
        return None
    url_hash, sha256, image_format, size, width, height, version = match.groups()
    image = StoredImage(
        sha256=sha256, format=image_format, bytes=int(size), width=int(width), height=int(height)
    )
    return url_hash, image, version or ""


class ObjectStore:
    """One output location on object storage. Plain: holds its URL and opens its client
    lazily, so an instance is cheap in any process (a Dask worker builds its own)."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = check_object_url(url)
        self._create = create  # file://: make the folder (a store looked at only is not made)
        self._client: Any = None

    def __repr__(self) -> str:
        return f"ObjectStore({self.url!r})"

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._connect()
        return self._client

    def _connect(self) -> Any:
        scheme = urlsplit(self.url).scheme.lower()
        build: Any = from_url  # its overloads type each store's options separately
        with self._reported():
            if scheme == "file":
                return build(self.url, mkdir=self._create)
            if scheme in ("s3", "s3a"):
                _check_aws_settings()
            endpoint = _checked_endpoint()
            options = {
                "connect_timeout": "10s",
                "timeout": "60s",
                # S3-compatible services on a private network (MinIO, moto) often speak http.
                "allow_http": bool(endpoint and endpoint.startswith("http://")),
            }
            retry = {"max_retries": 3, "retry_timeout": timedelta(seconds=60)}
            return build(self.url, client_options=options, retry_config=retry)

    def location(self, key: str) -> str:
        return f"{self.url}/{key}"

    # Plain object operations, every failure one line.

    @contextlib.contextmanager
    def _reported(self) -> Iterator[None]:
        """obstore's errors as one StoreError line; its expected answers (an object that
        exists, or not) pass through."""
        try:
            yield
        except (AlreadyExistsError, FileNotFoundError, StoreError):
            raise
        except (BaseError, OSError, ValueError) as exc:
            raise StoreError(describe_failure(self.url, exc)) from None
        except BaseException as exc:
            # The Rust client panics on settings it cannot use (an AWS_REGION with a newline):
            # a BaseException, which nothing else would catch before the traceback.
            if type(exc).__name__ != "PanicException":
                raise
            raise StoreError(
                f"cannot use {self.url}: the object-store client failed ({_one_line(exc)}); "
                "check AWS_ENDPOINT_URL and AWS_REGION"
            ) from None

    def put(self, key: str, data: bytes, *, create_only: bool = False) -> str:
        """Put ``data`` whole, with its ``Content-Type``; return the new object's version
        token."""
        mode: Literal["create", "overwrite"] = "create" if create_only else "overwrite"
        # The local backend keeps no attributes (and refuses them).
        local = urlsplit(self.url).scheme.lower() == "file"
        attributes = None if local else {"Content-Type": content_type(key)}
        with self._reported():
            put = obstore.put(self.client, key, data, mode=mode, attributes=attributes)
            return version_token(put.get("e_tag"))

    def put_image(self, key: str, content: bytes, *, sha256: str) -> str:
        """Store an image's validated ``content`` (of ``sha256``) under its content key;
        return the version of the object holding it. An image stored already is not put
        again: where the version tag is no content hash (``file://``, some S3-compatible
        services) that would change the version every other URL's index entry of it holds.
        Its bytes are hashed instead, and put back only when damaged."""
        try:
            return self.put(key, content, create_only=True)
        except AlreadyExistsError:
            pass
        with self._reported():
            try:
                found = obstore.get(self.client, key)
                stored = bytes(found.bytes())
            except (NotFoundError, FileNotFoundError):  # pruned meanwhile
                found, stored = None, b""
        if found is not None and hashlib.sha256(stored).hexdigest() == sha256:
            return version_token(found.meta.get("e_tag"))
        return self.put(key, content)

    def get(self, key: str) -> bytes:
        with self._reported():
            try:
                return bytes(obstore.get(self.client, key).bytes())
            except (NotFoundError, FileNotFoundError):  # S3's, and the local backend's
                raise FileNotFoundError(
                    errno.ENOENT, "no such object", self.location(key)
                ) from None

    def listing(self, prefix: str) -> Iterator[ObjectInfo]:
        """Objects under the folder-like ``prefix`` (obstore lists whole path segments)."""
        with self._reported():
            for page in obstore.list(self.client, prefix, chunk_size=1000):
                for entry in page:
                    yield ObjectInfo(
                        key=entry["path"],
                        size=int(entry["size"]),
                        modified=entry["last_modified"],
                        version=version_token(entry.get("e_tag")),
                    )

    def delete(self, keys: Iterable[str]) -> None:
        with self._reported():
            obstore.delete(self.client, list(keys))

    def check_access(self) -> None:
        """One LIST request: wrong credentials, a missing bucket or an unreachable endpoint
        stop the run here, before anything is written. Before it, ConfigError for a place
        among another store's own entries (``s3://b/p/snapshots/x`` when ``s3://b/p`` is a
        store), which that store's next prune would delete."""
        if (outer := self.enclosing_store()) is not None:
            raise ConfigError(nested_store(self.url, outer))
        for _ in self.listing(LOCK_PREFIX):
            break

    def enclosing_store(self) -> str | None:
        """The URL of a store this one lies among the own entries of, if any: one LIST for
        each prefix above followed by a store's entry name (usually one at most). A prefix
        holding ``snapshots/`` and ``index/`` is a store; one that cannot be listed (a
        policy granting this prefix only) is taken for none."""
        parts = urlsplit(self.url)
        names = parts.path.strip("/").split("/")
        for depth in range(len(names) - 1, -1, -1):
            if names[depth] not in OWN_PREFIXES:
                continue
            above = f"{parts.scheme}://{parts.netloc}/{'/'.join(names[:depth])}"
            try:
                candidate = ObjectStore(above, create=False)
                with candidate._reported():
                    top = obstore.list_with_delimiter(candidate.client)["common_prefixes"]
            except (ValueError, StoreError):  # the file system's root, an unlistable bucket
                continue
            if {"snapshots/", "index/"} <= {name.rstrip("/") + "/" for name in top}:
                return candidate.url
        return None

    # The store's own operations.

    def stored_images(self) -> dict[str, ObjectInfo]:
        """Every stored image (``images/…``) by key."""
        return {info.key: info for info in self.listing("images/") if STORED_PATH.match(info.key)}

    def lookup(self, urls: Iterable[str]) -> dict[str, StoredImage]:
        """The stored image each of ``urls`` gave before, when that image is still stored as
        it was put (its object there, of the recorded size and version): one LIST of the
        index and one of the images, whatever the number of URLs."""
        wanted = {digest: url for url in urls if (digest := url_hash(url)) is not None}
        newest: dict[str, tuple[datetime, StoredImage, str]] = {}
        for info in self.listing(INDEX_PREFIX):
            parsed = parse_index_key(info.key)
            if parsed is None or parsed[0] not in wanted:
                continue
            digest, image, version = parsed
            if digest not in newest or info.modified > newest[digest][0]:
                newest[digest] = (info.modified, image, version)
        if not newest:
            return {}
        stored = self.stored_images()
        found: dict[str, StoredImage] = {}
        for digest, (_, image, version) in newest.items():
            current = stored.get(stored_relpath(image.sha256, image.format))
            # Written again since (damaged in place, say): not reused, fetched and put back.
            rewritten = bool(version) and current is not None and version != current.version
            if current is not None and current.size == image.bytes and not rewritten:
                found[wanted[digest]] = image
        return found

    def read_stored(self, relpath: str, *, sha256: str, size: int | None = None) -> None:
        """Check that the stored object ``relpath`` holds content ``sha256`` (of ``size``
        bytes); StoredFileProblem if not."""
        if not is_stored_relpath(relpath, sha256):
            raise StoredFileProblem(f"{relpath!r} is not the stored path of sha256 {sha256}")
        try:
            content = self.get(relpath)
        except FileNotFoundError:
            raise StoredFileProblem(f"{relpath} is missing") from None
        except StoreError as exc:
            raise StoredFileProblem(f"{relpath}: {exc}") from None
        if size is not None and len(content) != size:
            raise StoredFileProblem(f"{relpath} has {len(content)} bytes, not {size}")
        if (actual := hashlib.sha256(content).hexdigest()) != sha256:
            raise StoredFileProblem(f"{relpath} has sha256 {actual}, not {sha256}")

    def remember(self, url: str, image: StoredImage, *, version: str = "") -> None:
        """Record which image ``url`` gave (its object of ``version``): a zero-byte object,
        put after the image."""
        if (key := index_key(url, image, version=version)) is not None:
            self.put(key, b"")

    # Locks: a snapshot and a prune must not overlap (prune deletes what nothing references).

    @staticmethod
    def snapshot_lock_key(snapshot_id: str) -> str:
        return f"{LOCK_PREFIX}snapshot-{snapshot_id}"

    def _live_locks(self, *, reference: str | None = None) -> dict[str, datetime]:
        """Lock keys refreshed within ``STALE_LOCK``, with their last refresh. Ages are
        counted on the store's clock, from the lock ``reference`` just put, when given: a
        machine whose clock runs ahead must not take live locks for dead ones."""
        locks = {
            info.key: info.modified
            for info in self.listing(LOCK_PREFIX)
            if _LOCK_KEY.match(info.key)
        }
        now = locks.get(reference or "") or datetime.now(UTC)
        return {key: modified for key, modified in locks.items() if now - modified < STALE_LOCK}

    def running_snapshots(self, *, reference: str | None = None) -> list[str]:
        """Lock keys of snapshots in progress."""
        return sorted(key for key in self._live_locks(reference=reference) if key != PRUNE_LOCK)

    def prune_running(self, *, reference: str | None = None) -> bool:
        return PRUNE_LOCK in self._live_locks(reference=reference)

    def confirm_alone(self) -> None:
        """Before a prune deletes anything: its lock put again, and no snapshot running. A
        prune stalled past its lock's life (a paused VM, SIGSTOP) may find one that started
        meanwhile, seeing no live prune; then it deletes nothing."""
        self.put(PRUNE_LOCK, b"")
        if running := self.running_snapshots(reference=PRUNE_LOCK):
            names = ", ".join(key.removeprefix(f"{LOCK_PREFIX}snapshot-") for key in running)
            raise StoreError(
                f"snapshot(s) {names} started on {self.url} while this prune was stalled past "
                "its lock: nothing deleted; prune again when they have finished"
            )

    def settle(self, snapshot_id: str, records: list[ImageRecord]) -> list[ImageRecord]:
        """Before a snapshot writes its manifest: its lock put again (so no prune starts
        deleting now), any prune that began while it had lapsed waited out, then every image
        the snapshot names checked to be there (one LIST). One deleted meanwhile is recorded
        ``failed``: a manifest never names a missing image."""
        key = self.snapshot_lock_key(snapshot_id)
        self.put(key, b"")
        while self.prune_running(reference=key):
            time.sleep(PRUNE_POLL_SECONDS)
            self.put(key, b"")
        present = {key: info.size for key, info in self.stored_images().items()}
        return [
            record
            if record.path is None or present.get(record.path) == record.bytes
            else record.model_copy(
                update={
                    "status": "failed",
                    "path": None,
                    "error": "its stored copy was deleted by a prune while this snapshot "
                    "was stalled; the next snapshot fetches it again",
                }
            )
            for record in records
        ]

    @contextlib.contextmanager
    def _held(self, key: str) -> Iterator[None]:
        """Keep the lock object ``key`` fresh while the block runs; delete it after."""
        stop = threading.Event()

        def refresh() -> None:
            while not stop.wait(LOCK_REFRESH.total_seconds()):
                with contextlib.suppress(StoreError):  # the next refresh may get through
                    self.put(key, b"")

        keeper = threading.Thread(target=refresh, name=f"refresh {key}", daemon=True)
        keeper.start()
        try:
            yield
        except BaseException:
            stop.set()
            keeper.join()
            with contextlib.suppress(StoreError):  # the error that stopped the block says more
                self.delete([key])
            raise
        stop.set()
        keeper.join()
        self.delete([key])

    @contextlib.contextmanager
    def snapshot_lock(self, snapshot_id: str) -> Iterator[None]:
        """Announce a snapshot in progress; refuse while a prune runs."""
        key = self.snapshot_lock_key(snapshot_id)
        self.put(key, b"")
        with self._held(key):
            if self.prune_running(reference=key):
                raise StoreError(
                    f"a prune is running on {self.url} ({self.location(PRUNE_LOCK)}): "
                    "try again when it has finished"
                )
            yield

    @contextlib.contextmanager
    def prune_lock(self) -> Iterator[None]:
        """Hold the store alone: one prune at a time (a conditional PUT), and none while a
        snapshot runs (each side announces itself first, then checks for the other)."""
        if (
            PRUNE_LOCK
            in {info.key for info in self.listing(LOCK_PREFIX)} - self._live_locks().keys()
        ):
            self.delete([PRUNE_LOCK])  # a killed prune's
        try:
            self.put(PRUNE_LOCK, b"", create_only=True)
        except AlreadyExistsError:
            raise StoreError(
                f"another prune is running on {self.url} (its lock "
                f"{self.location(PRUNE_LOCK)} is refreshed while it runs)"
            ) from None
        with self._held(PRUNE_LOCK):
            if running := self.running_snapshots(reference=PRUNE_LOCK):
                names = ", ".join(key.removeprefix(f"{LOCK_PREFIX}snapshot-") for key in running)
                raise StoreError(
                    f"snapshot(s) in progress on {self.url}: {names}; prune when they have "
                    f"finished (a lock not refreshed for {STALE_LOCK.seconds // 60} minutes is a "
                    "killed run's)"
                )
            yield

    def write(self, key: str, data: bytes) -> str:
        """Put a whole file (a manifest, a page); return its URL."""
        self.put(key, data)
        return self.location(key)
