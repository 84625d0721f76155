"""The object store through obstore's local backend (``file://``): the same code path as S3,
minus the network (tests/e2e/test_object_storage.py runs it against a real S3 server)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gallery_snapshot.errors import StoreError
from gallery_snapshot.models import FetchResult, Link, StoredImage
from gallery_snapshot.store import objects as object_store
from gallery_snapshot.store import open_store, stored_relpath
from gallery_snapshot.store.contract import IndexEntry
from gallery_snapshot.store.object_client import (
    check_object_url,
    describe_failure,
    is_object_url,
    names_a_url,
)
from gallery_snapshot.store.object_index import index_key, parse_index_key, stored_images
from gallery_snapshot.store.objects import PRUNE_LOCK, ObjectStore
from gallery_snapshot.validation import validate_fetched
from tests.support.images import image_bytes


def image_of(content: bytes, image_format: str = "JPEG") -> StoredImage:
    return StoredImage(
        sha256=hashlib.sha256(content).hexdigest(),
        format=image_format,
        bytes=len(content),
        width=3,
        height=2,
    )


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    return ObjectStore(f"file://{tmp_path}/bucket")


def put_image(store: ObjectStore, content: bytes) -> StoredImage:
    image = image_of(content)
    store.put(stored_relpath(image.sha256, image.format), content)
    return image


@pytest.mark.parametrize(
    ("out_dir", "expected"),
    [
        ("s3://bucket/prefix", True),
        ("S3://bucket", True),
        ("gs://bucket/p", True),
        ("az://account/container", True),
        ("file:///tmp/x", True),
        ("/tmp/s3://x", False),
        ("snapshots", False),
        ("C:\\snapshots", False),
        ("https://example.org/x", False),
        ("file:relative", True),
    ],
)
def test_only_object_store_schemes_name_an_object_store(out_dir: str, expected: bool) -> None:
    assert is_object_url(out_dir) is expected


@pytest.mark.parametrize(
    ("out_dir", "expected"),
    [
        ("http://bucket/p", True),
        ("gcs://b", True),
        ("file:x", True),
        ("C:\\x", False),
        ("a:b", False),
    ],
)
def test_a_url_of_an_unknown_store_is_still_a_url(out_dir: str, expected: bool) -> None:
    assert names_a_url(out_dir) is expected


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("AWS_ENDPOINT_URL", "", "is not an endpoint"),
        ("AWS_ENDPOINT_URL", "not a url", "is not an endpoint"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:99999", "is not an endpoint"),
        ("AWS_ENDPOINT_URL", "http://[::1", "is not an endpoint"),
        ("AWS_REGION", "us east\n1", "AWS_REGION holds a control character"),
    ],
)
def test_settings_the_client_cannot_use_are_one_line_not_a_panic(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv(name, value)
    with pytest.raises(StoreError, match=message) as raised:
        ObjectStore("s3://bucket/prefix").check_access()
    assert "\n" not in str(raised.value)


def test_a_password_in_the_endpoint_never_reaches_a_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://proxyuser:SuperSecret999@127.0.0.1:9")
    failure = _Failure(
        "Error performing GET http://proxyuser:SuperSecret999@127.0.0.1:9/b "
        "in 1ms - HTTP error: error sending request"
    )
    message = describe_failure("s3://b/p", failure)
    assert "cannot reach" in message and "SuperSecret999" not in message


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3://AKIA:secret@bucket/p", "credentials come from AWS_ACCESS_KEY_ID"),
        ("s3://bucket/p?versionId=1", "bucket and prefix only"),
        ("s3:///prefix", "expected s3://BUCKET/PREFIX"),
        ("s3://bucket:99/prefix", "no port"),
        ("s3://bucket/p%00x", "control characters and %-escapes"),
        ("s3://bucket/a\nb", "control characters"),
        ("file://", "not the file system's root"),
        ("file:///", "not the file system's root"),
        ("file:relative/x", "file:///ABSOLUTE/PATH"),
        ("file://host/x", "file:///ABSOLUTE/PATH"),
        ("http://bucket/p", "http:// is not a store this tool writes to"),
        ("gcs://bucket/p", "gcs:// is not a store"),
        ("s3://bucket/a/../b", "'..' are not allowed"),
    ],
)
def test_a_url_that_is_not_a_plain_place_is_refused(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_object_url(url)


def test_a_trailing_slash_does_not_make_another_store() -> None:
    assert check_object_url("s3://bucket/prefix/") == "s3://bucket/prefix"


@given(
    url=st.text(min_size=1, max_size=80),
    content=st.binary(max_size=64),
    image_format=st.sampled_from(["JPEG", "PNG", "GIF", "WEBP"]),
    size=st.integers(0, 10**12),
    width=st.integers(1, 10**6),
    height=st.integers(1, 10**6),
    version=st.text(alphabet="0123456789abcdefABCDEF", max_size=64),
)
def test_an_index_key_gives_back_the_image_it_was_made_of(
    url: str, content: bytes, image_format: str, size: int, width: int, height: int, version: str
) -> None:
    image = StoredImage(
        sha256=hashlib.sha256(content).hexdigest(),
        format=image_format,
        bytes=size,
        width=width,
        height=height,
    )
    key = index_key(f"https://i.example.org/{url}", image, version=version)
    parsed = parse_index_key(key)
    assert parsed is not None and parsed[1:] == (image, version)
    assert len(key) < 1024  # S3's limit on a key


def test_keys_of_another_shape_are_not_index_entries() -> None:
    assert parse_index_key("index/abc/def.JPEG.1.1x1") is None
    assert parse_index_key("images/ab/cd/x.jpg") is None


def test_lookup_reuses_only_what_is_stored_whole(store: ObjectStore) -> None:
    kept = put_image(store, b"kept image")
    store.index.remember([IndexEntry("https://i.example.org/kept.jpg", kept)])
    missing = image_of(b"never stored")
    store.index.remember([IndexEntry("https://i.example.org/missing.jpg", missing)])
    truncated = put_image(store, b"whole image")
    store.put(stored_relpath(truncated.sha256, "JPEG"), b"whole")  # shorter than recorded
    store.index.remember([IndexEntry("https://i.example.org/truncated.jpg", truncated)])

    found = store.index.lookup(
        [
            "https://i.example.org/kept.jpg",
            "https://i.example.org/missing.jpg",
            "https://i.example.org/truncated.jpg",
            "https://i.example.org/unknown.jpg",
        ]
    )
    assert found == {"https://i.example.org/kept.jpg": kept}


def test_an_image_damaged_in_place_is_not_reused(store: ObjectStore) -> None:
    content = b"whole image"
    image = image_of(content)
    version = store.put(stored_relpath(image.sha256, "JPEG"), content)
    assert version  # the backend gives one (an ETag)
    store.index.remember([IndexEntry("https://i.example.org/a.jpg", image, version)])
    assert store.index.lookup(["https://i.example.org/a.jpg"]) == {
        "https://i.example.org/a.jpg": image
    }
    time.sleep(0.01)  # the local backend's ETag includes the modification time
    store.put(stored_relpath(image.sha256, "JPEG"), b"whole imagf")  # same size, other bytes
    assert store.index.lookup(["https://i.example.org/a.jpg"]) == {}


def test_lookup_matches_urls_as_the_local_index_does(store: ObjectStore) -> None:
    image = put_image(store, b"content")
    store.index.remember([IndexEntry("https://I.Example.org:443/a.jpg", image)])
    assert store.index.lookup(["https://i.example.org/a.jpg"]) == {
        "https://i.example.org/a.jpg": image
    }
    assert store.index.lookup(["https://i.example.org/a.jpg?size=large"]) == {}


def test_the_newest_entry_of_a_url_wins(store: ObjectStore, tmp_path: Path) -> None:
    url = "https://i.example.org/changed.jpg"
    old, new = put_image(store, b"old content"), put_image(store, b"new content")
    store.index.remember([IndexEntry(url, old)])
    stale = tmp_path / "bucket" / index_key(url, old)
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    store.index.remember([IndexEntry(url, new)])
    assert store.index.lookup([url]) == {url: new}


def test_a_snapshot_waits_for_a_running_prune(store: ObjectStore) -> None:
    with (
        store.prune_lock(),
        pytest.raises(StoreError, match="a prune is running"),
        store.snapshot_lock("s1"),
    ):
        pass
    assert list(store.listing("locks/")) == []


def test_a_prune_waits_for_running_snapshots_and_for_another_prune(store: ObjectStore) -> None:
    with (
        store.snapshot_lock("20261125T000000Z-abcdef"),
        pytest.raises(StoreError, match=r"in progress.*20261125T000000Z-abcdef"),
        store.prune_lock(),
    ):
        pass
    with store.prune_lock():
        with pytest.raises(StoreError, match="another prune is running"), store.prune_lock():
            pass
        assert [info.key for info in store.listing("locks/")] == [PRUNE_LOCK]
    assert list(store.listing("locks/")) == []


def age(tmp_path: Path, key: str, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(tmp_path / "bucket" / key, (then, then))


def test_a_killed_snapshots_lock_stops_prunes_for_ten_minutes_only(
    store: ObjectStore, tmp_path: Path
) -> None:
    store.put(store.snapshot_lock_key("killed"), b"")
    age(tmp_path, store.snapshot_lock_key("killed"), 9 * 60)
    with pytest.raises(StoreError, match="killed"), store.prune_lock():
        pass
    age(tmp_path, store.snapshot_lock_key("killed"), 11 * 60)
    with store.prune_lock():
        pass


def test_a_killed_prunes_lock_is_taken_over_once_stale(store: ObjectStore, tmp_path: Path) -> None:
    store.put(PRUNE_LOCK, b"")
    with pytest.raises(StoreError, match="a prune is running"), store.snapshot_lock("s1"):
        pass
    age(tmp_path, PRUNE_LOCK, 11 * 60)
    with store.snapshot_lock("s1"):
        pass
    with store.prune_lock():
        assert store.prune_running()
    assert list(store.listing("locks/")) == []


def test_a_held_lock_is_kept_fresh(
    store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(object_store, "LOCK_REFRESH", timedelta(seconds=0.05))
    key = store.snapshot_lock_key("long")
    with store.snapshot_lock("long"):
        age(tmp_path, key, 11 * 60)
        assert store.running_snapshots() == []
        deadline = time.monotonic() + 10
        while not store.running_snapshots() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert store.running_snapshots() == [key]


def test_files_of_the_store_are_written_and_read_whole(store: ObjectStore) -> None:
    opened = open_store(store.url)
    where = opened.write("snapshots/s/manifest.json", b"{}")
    assert (
        where
        == f"{store.url}/snapshots/s/manifest.json"
        == opened.location("snapshots/s/manifest.json")
    )
    assert opened.read("snapshots/s/manifest.json") == b"{}"


class _Failure(Exception):
    pass


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Error performing GET http://x/b - Server returned non-2xx status code: "
            "403 Forbidden: <?xml",
            "refused (HTTP 403): check AWS_ACCESS_KEY_ID",
        ),
        (
            "Error performing list request: status code: 404 Not Found\nDebug source: ...",
            "no such bucket",
        ),
        (
            "Error performing GET http://127.0.0.1:1/b in 1ms - HTTP error: error sending request",
            "cannot reach the object store",
        ),
    ],
)
def test_failures_are_one_line_a_person_can_act_on(text: str, expected: str) -> None:
    message = describe_failure("s3://b/p", _Failure(text))
    assert expected in message
    assert "\n" not in message and "<?xml" not in message


def fetched(url: str, content: bytes, rank: int = 1) -> FetchResult:
    return FetchResult(
        link=Link(url=url, id=url.rsplit("/", 1)[1], rank=rank),
        status="fetched",
        sha256=hashlib.sha256(content).hexdigest(),
        bytes=len(content),
        content=content,
    )


def validate(store: ObjectStore, results: list[FetchResult]) -> list[str]:
    records = validate_fetched(
        results, out_dir=store.url, snapshot_id="s1", formats=("JPEG",), max_pixels=10**8
    )
    return [record.status for record in records]


def test_the_same_bytes_under_two_urls_stay_reusable_by_both(store: ObjectStore) -> None:
    # The local backend's version tag (ETag) is no content hash: putting the image again for
    # the second URL changed the version the first URL's entry holds.
    content = image_bytes(7)
    urls = ["https://i.example.org/a.jpg", "https://i.example.org/b.jpg"]
    assert validate(store, [fetched(url, content, rank) for rank, url in enumerate(urls, 1)]) == [
        "downloaded",
        "downloaded",
    ]
    assert set(store.index.lookup(urls)) == set(urls)
    # A later snapshot finding one of them new again puts nothing either.
    version = stored_images(store)[stored_relpath(image_of(content).sha256, "JPEG")].version
    assert validate(store, [fetched("https://i.example.org/c.jpg", content)]) == ["downloaded"]
    assert stored_images(store)[stored_relpath(image_of(content).sha256, "JPEG")].version == (
        version
    )
    assert set(store.index.lookup([*urls, "https://i.example.org/c.jpg"])) == {
        *urls,
        "https://i.example.org/c.jpg",
    }


def test_an_image_damaged_in_place_is_put_back_when_fetched_again(
    store: ObjectStore, tmp_path: Path
) -> None:
    content = image_bytes(8)
    url = "https://i.example.org/a.jpg"
    assert validate(store, [fetched(url, content)]) == ["downloaded"]
    key = stored_relpath(image_of(content).sha256, "JPEG")
    damaged = bytearray(content)
    damaged[-10] ^= 0xFF  # same size, other bytes
    (tmp_path / "bucket" / key).write_bytes(bytes(damaged))
    assert store.index.lookup([url]) == {}
    assert validate(store, [fetched(url, content)]) == ["downloaded"]
    assert store.get(key) == content
    assert set(store.index.lookup([url])) == {url}


def test_keys_under_locks_of_another_shape_block_nothing(store: ObjectStore) -> None:
    for foreign in ("locks/terraform.tflock", "locks/snapshot-x/nested", "locks/prune.bak"):
        store.put(foreign, b"not ours")
    assert store.running_snapshots() == []
    assert not store.prune_running()
    with store.prune_lock():
        pass
    with store.snapshot_lock("20261125T000000Z-abcdef"):
        pass
    assert {info.key for info in store.listing("locks/")} == {
        "locks/terraform.tflock",
        "locks/snapshot-x/nested",
        "locks/prune.bak",
    }


@pytest.mark.parametrize(
    "name",
    ["AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN"],
)
def test_an_aws_setting_with_a_newline_is_one_line_without_the_clients_panic(
    tmp_path: Path, name: str
) -> None:
    links = tmp_path / "links.txt"
    links.write_text("https://i.imgur.com/a.jpg\n")
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "key",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        name: "us-east\nnot-a-region",
    }
    command = [str(Path(sys.executable).parent / "gallery-snapshot"), "run", "--urls-file"]
    result = subprocess.run(
        [*command, str(links), "--out", "s3://bucket/prefix"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("gallery-snapshot: error: ")
    assert result.stderr.count("\n") == 1, result.stderr
    assert name in result.stderr and "not-a-region" not in result.stderr  # may be a secret
