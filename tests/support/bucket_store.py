"""Reading a snapshot store kept in a bucket of the test S3 server, for the object-store tests:
what it holds, which of its objects were PUT how often, and its manifests."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from typing import Any, Protocol
from urllib.parse import unquote

from tests.support.s3_server import _ACCESS_LINE, _ANSI

# The content-addressed shape: images/ab/cd/<sha256>.<ext>, ab and cd the sha256's first digits.
IMAGE_KEY = re.compile(r"^images/([0-9a-f]{2})/([0-9a-f]{2})/(([0-9a-f]{64})\.[a-z0-9]+)$")


class Bucket(Protocol):
    """What tests/support/s3_server.py's ``S3Bucket`` offers."""

    @property
    def name(self) -> str: ...

    @property
    def prefix(self) -> str: ...

    @property
    def server(self) -> Any: ...

    def objects(self, prefix: str = "") -> dict[str, int]: ...

    def requests(self, status: int | None = None) -> list[tuple[str, str]]: ...


def store_objects(bucket: Bucket, under: str = "") -> dict[str, int]:
    """Key (relative to the store's prefix) -> size of every object of the store under
    ``under``."""
    root = f"{bucket.prefix}/"
    return {key.removeprefix(root): size for key, size in bucket.objects(f"{root}{under}").items()}


def image_keys(bucket: Bucket) -> dict[str, int]:
    """The store's objects under ``images/``: key (relative to the store) -> size."""
    return store_objects(bucket, "images/")


def read_object(bucket: Bucket, relkey: str) -> bytes:
    body: bytes = bucket.server.get(bucket.name, f"{bucket.prefix}/{relkey}")
    return body


def manifests(bucket: Bucket) -> list[dict[str, Any]]:
    """Every manifest of the store, oldest first (snapshot ids start with their UTC time)."""
    keys = sorted(
        key
        for key in store_objects(bucket, "snapshots/")
        if key.startswith("snapshots/") and key.endswith("/manifest.json")
    )
    found: list[dict[str, Any]] = []
    for key in keys:
        manifest: dict[str, Any] = json.loads(read_object(bucket, key))
        found.append(manifest)
    return found


def store_requests(
    bucket: Bucket, *, method: str | None = None, status: int | None = None
) -> list[str]:
    """Keys (relative to the store) of the object requests made to the bucket so far, oldest
    first, keeping only ``method`` (and ``status``) when given. Bucket-level requests (LIST,
    CreateBucket) are left out: see ``list_requests``."""
    root = f"/{bucket.name}/{bucket.prefix}/"
    return [
        path.removeprefix(root)
        for verb, path in bucket.requests(status=status)
        if path.startswith(root) and (method is None or verb == method)
    ]


def image_puts(bucket: Bucket) -> Counter[str]:
    """How many successful PUTs each image key got so far."""
    return Counter(
        key for key in store_requests(bucket, method="PUT", status=200) if key.startswith("images/")
    )


def bucket_gets(bucket: Bucket) -> list[str]:
    """The query strings of every bucket-level GET (``GET /BUCKET?…``) so far, oldest first,
    read from the server's access log (``S3Bucket.requests`` drops queries)."""
    queries: list[str] = []
    for line in bucket.server.log_path.read_text(errors="replace").splitlines():
        match = _ACCESS_LINE.search(_ANSI.sub("", line))
        if match is None:
            continue
        method, target, _ = match.groups()
        path, _, query = target.partition("?")
        if method == "GET" and unquote(path).rstrip("/") == f"/{bucket.name}":
            queries.append(unquote(query))
    return queries


def list_requests(bucket: Bucket) -> int:
    """LIST requests (``GET /BUCKET?list-type=2&…``) made to the bucket so far."""
    return sum(1 for query in bucket_gets(bucket) if "list-type=2" in query)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_images_whole(s3_bucket: Bucket, manifest: dict[str, Any]) -> None:
    """Every stored image of ``manifest`` is in the bucket under its content's name, its bytes
    hashing to that name."""
    stored = image_keys(s3_bucket)
    for image in manifest["images"]:
        if image["status"] in ("downloaded", "reused"):
            assert image["path"] in stored, image
            match = IMAGE_KEY.match(image["path"])
            assert match is not None, image
            data = read_object(s3_bucket, image["path"])
            assert sha256_hex(data) == image["sha256"] == match[4]
            assert len(data) == image["bytes"] == stored[image["path"]]
