"""The store's promises, against a loopback server whose content each test controls: one
stored file per content, never shared by different images, never moved or re-judged by a
later run, never read through a symbolic link."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from gallery_snapshot.manifest import iter_manifests
from gallery_snapshot.sources.urls_file import list_urls_file
from gallery_snapshot.store import is_stored_relpath
from gallery_snapshot.store.sqlite_index import SqliteIndex
from tests.support.content_server import ContentServer, content_servers
from tests.support.images import image_bytes
from tests.support.pipeline import snapshot


@pytest.fixture
def servers() -> Iterator[tuple[dict[str, bytes], list[ContentServer]]]:
    files: dict[str, bytes] = {}
    with content_servers(2, files) as running:
        yield files, running


def urls_file(tmp_path: Path, urls: list[str]) -> Path:
    path = tmp_path / "urls.txt"
    path.write_text("\n".join(urls) + "\n")
    return path


def by_url(manifest: dict[str, object]) -> dict[str, dict[str, object]]:
    return {image["url"]: image for image in manifest["images"]}  # type: ignore[attr-defined, index]


def assert_stored_as_served(
    out: Path, manifest: dict[str, object], files: dict[str, bytes]
) -> None:
    for url, image in by_url(manifest).items():
        assert image["status"] in ("downloaded", "reused"), image
        path = out / str(image["path"])
        assert is_stored_relpath(str(image["path"]), str(image["sha256"]))
        assert path.read_bytes() == files[url], f"{url} is stored with another image's bytes"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == image["sha256"]


def test_same_names_on_other_paths_ports_and_queries_are_different_images(
    tmp_path: Path, servers: tuple[dict[str, bytes], list[ContentServer]]
) -> None:
    files, (one, two) = servers
    urls = [
        f"http://127.0.0.1:{one.port}/red/x.jpg",
        f"http://127.0.0.1:{one.port}/blue/x.jpg",
        f"http://127.0.0.1:{two.port}/red/x.jpg",
        f"http://localhost:{one.port}/red/x.jpg",
        f"http://127.0.0.1:{one.port}/red/x.jpg?v=2",
        f"http://127.0.0.1:{one.port}/red/x%20y.jpg",
        f"http://127.0.0.1:{one.port}/red/x_y.jpg",
    ]
    files.update({url: image_bytes(seed) for seed, url in enumerate(urls, start=1)})
    out = tmp_path / "out"
    first = snapshot(out, urls_file(tmp_path, urls))
    assert first["counts"]["downloaded"] == len(urls)
    assert_stored_as_served(out, first, files)
    # The next snapshot reuses each URL's own image, without a request.
    requests_before = len(one.requests) + len(two.requests)
    second = snapshot(out, urls_file(tmp_path, urls))
    assert second["counts"]["reused"] == len(urls)
    assert len(one.requests) + len(two.requests) == requests_before
    assert_stored_as_served(out, second, files)


def test_the_same_bytes_under_two_urls_are_stored_once(
    tmp_path: Path, servers: tuple[dict[str, bytes], list[ContentServer]]
) -> None:
    files, (one, _) = servers
    urls = [f"http://127.0.0.1:{one.port}/a.jpg", f"http://127.0.0.1:{one.port}/b.jpg"]
    files.update(dict.fromkeys(urls, image_bytes(7)))
    out = tmp_path / "out"
    manifest = snapshot(out, urls_file(tmp_path, urls))
    paths = {image["path"] for image in manifest["images"]}
    assert len(paths) == 1
    assert len([p for p in (out / "images").rglob("*.jpg")]) == 1


def test_a_later_run_never_moves_or_rejudges_what_an_earlier_one_stored(
    tmp_path: Path, servers: tuple[dict[str, bytes], list[ContentServer]]
) -> None:
    files, (one, _) = servers
    # Listed as .jpg, served as PNG: stored by a run that wants PNGs too.
    url = f"http://127.0.0.1:{one.port}/looks-like.jpg"
    files[url] = image_bytes(3, "PNG")
    out = tmp_path / "out"
    first = snapshot(out, urls_file(tmp_path, [url]), formats=("jpeg", "png"))
    [image] = first["images"]
    assert (image["status"], image["format"]) == ("downloaded", "PNG")

    second = snapshot(out, urls_file(tmp_path, [url]), formats=("jpeg",))
    assert second["images"] == []
    [skipped] = second["skipped"]
    assert skipped["reason"].startswith("stored as PNG, not a wanted format")
    assert (out / image["path"]).read_bytes() == files[url]  # left where it was
    assert not (out / "quarantine").exists()

    # Damaged, it is fetched again and judged as when it was stored: repaired, still skipped.
    stored = out / image["path"]
    stored.chmod(0o644)
    stored.write_bytes(b"rot" + files[url][3:])
    third = snapshot(out, urls_file(tmp_path, [url]), formats=("jpeg",))
    assert [item["reason"][:13] for item in third["skipped"]] == ["stored as PNG"]
    assert stored.read_bytes() == files[url]
    assert not (out / "quarantine").exists()


def test_urls_file_ids_are_whole_urls_so_same_names_are_not_duplicates(tmp_path: Path) -> None:
    listing = list_urls_file(
        str(
            urls_file(
                tmp_path,
                ["http://h/red/x.jpg", "http://h/blue/x.jpg", "http://h/red/x.png"],
            )
        )
    )
    ids = [link.id for link in listing.links]
    assert len(set(ids)) == 3
    assert ids[0] == "http://h/red/x.jpg"


def test_a_planted_symlink_is_never_read_through(
    tmp_path: Path, servers: tuple[dict[str, bytes], list[ContentServer]]
) -> None:
    files, (one, _) = servers
    url = f"http://127.0.0.1:{one.port}/a.jpg"
    files[url] = image_bytes(1)
    out = tmp_path / "out"
    [image] = snapshot(out, urls_file(tmp_path, [url]))["images"]
    stored = out / image["path"]
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(image_bytes(99))
    stored.unlink()
    stored.symlink_to(secret)

    [again] = snapshot(out, urls_file(tmp_path, [url]))["images"]
    # Refused (not reused through the link), fetched again, and the link replaced.
    assert again["status"] == "downloaded" and again["sha256"] == image["sha256"]
    assert not stored.is_symlink() and stored.read_bytes() == files[url]
    assert secret.read_bytes() == image_bytes(99)


def snapshot_of_three(
    tmp_path: Path, servers: tuple[dict[str, bytes], list[ContentServer]]
) -> tuple[Path, list[str]]:
    """A store holding one snapshot of three images; its folder and the URLs."""
    files, (one, _) = servers
    urls = [f"http://127.0.0.1:{one.port}/{n}.jpg" for n in range(3)]
    files.update({url: image_bytes(n) for n, url in enumerate(urls)})
    out = tmp_path / "out"
    snapshot(out, urls_file(tmp_path, urls))
    return out, urls


def test_a_lost_url_index_is_rebuilt_from_the_manifests(
    tmp_path: Path, servers: tuple[dict[str, bytes], list[ContentServer]]
) -> None:
    out, urls = snapshot_of_three(tmp_path, servers)
    for path in out.glob("index.sqlite*"):
        path.unlink()
    again = snapshot(out, urls_file(tmp_path, urls))
    assert again["counts"]["reused"] == 3
    assert SqliteIndex(out / "index.sqlite").count() == 3
    assert len(list(iter_manifests(out))) == 2


def test_a_damaged_url_index_is_set_aside_and_rebuilt(
    tmp_path: Path, servers: tuple[dict[str, bytes], list[ContentServer]]
) -> None:
    out, urls = snapshot_of_three(tmp_path, servers)
    for path in out.glob("index.sqlite-*"):
        path.unlink()
    (out / "index.sqlite").write_bytes(b"not a database" * 1000)
    again = snapshot(out, urls_file(tmp_path, urls))
    assert again["counts"]["reused"] == 3
    [aside] = out.glob("index.sqlite.damaged-*")
    assert aside.read_bytes() == b"not a database" * 1000
