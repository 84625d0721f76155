"""The client side of an object store (``s3://BUCKET/PREFIX``, and ``gs://``, ``az://``,
``file://``): which names are object-store URLs, the plain object operations (put, get, list,
delete), and every failure said in one line a person can act on.

Built on obstore (Rust ``object_store``): one small dependency for S3, GCS, Azure and local
files, conditional PUTs (for locks), and several times less CPU per request than s3fs's
aiobotocore. Credentials and endpoint come from the standard environment only
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``, ``AWS_REGION``, …);
the URL names a place, never a secret.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

import obstore
from obstore.exceptions import AlreadyExistsError, BaseError, NotFoundError
from obstore.store import from_url

from gallery_snapshot.errors import StoreError

OBJECT_SCHEMES = frozenset({"s3", "s3a", "gs", "az", "azure", "abfs", "abfss", "adl", "file"})

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


class ObjectExists(Exception):
    """A create-only put found its key taken."""


class ObjectClient:
    """The objects under one URL. Plain: holds its URL and opens its client lazily, so an
    instance is cheap in any process (a Dask worker builds its own)."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = check_object_url(url)
        self._create = create  # file://: make the folder (a store looked at only is not made)
        self._client: Any = None

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
        except (ObjectExists, FileNotFoundError, StoreError):
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
        token. With ``create_only``, ObjectExists when the key is taken."""
        mode: Literal["create", "overwrite"] = "create" if create_only else "overwrite"
        # The local backend keeps no attributes (and refuses them).
        local = urlsplit(self.url).scheme.lower() == "file"
        attributes = None if local else {"Content-Type": content_type(key)}
        with self._reported():
            try:
                put = obstore.put(self.client, key, data, mode=mode, attributes=attributes)
            except AlreadyExistsError:
                raise ObjectExists(self.location(key)) from None
            return version_token(put.get("e_tag"))

    def get(self, key: str) -> bytes:
        return self.get_versioned(key)[0]

    def get_versioned(self, key: str) -> tuple[bytes, str]:
        """An object's bytes and version token; FileNotFoundError when there is none."""
        with self._reported():
            try:
                found = obstore.get(self.client, key)
                return bytes(found.bytes()), version_token(found.meta.get("e_tag"))
            except (NotFoundError, FileNotFoundError):  # S3's, and the local backend's
                raise FileNotFoundError(
                    errno.ENOENT, "no such object", self.location(key)
                ) from None

    def top_prefixes(self) -> set[str]:
        """The folder-like prefixes at the top of this URL (``snapshots/``, …): one LIST."""
        with self._reported():
            top = obstore.list_with_delimiter(self.client)["common_prefixes"]
        return {name.rstrip("/") + "/" for name in top}

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
