"""One bad URL fails only its own item, on every path a URL is parsed, normalized, joined or
encoded: selection, the URL index and its object-store keys, the page, the report and the
manifest. URLs come from ``tests.support.urls`` (what parsers disagree on); each ends as a
link, a skip or a failure, and no exception escapes. Downloads and redirects are fuzzed in
``test_host_check``, against a trap server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gallery_snapshot.changes import with_changes
from gallery_snapshot.manifest import build_manifest, encode_manifest, write_manifest
from gallery_snapshot.models import ImageRecord, Link, Manifest, StoredImage
from gallery_snapshot.reports.problems import markdown_report
from gallery_snapshot.selection import (
    UrlProblem,
    image_url,
    normalize_url,
    parse_image_url,
    select_links,
    url_rejection,
)
from gallery_snapshot.snapshot_page import render_page
from gallery_snapshot.sources.imgur import _ListingBuilder
from gallery_snapshot.sources.urls_file import list_urls_file
from gallery_snapshot.store.contract import IndexEntry
from gallery_snapshot.store.local import LocalStore as Store
from gallery_snapshot.store.migration import rebuild_index
from gallery_snapshot.store.object_index import index_key, url_hash
from gallery_snapshot.store.sqlite_index import SqliteIndex, url_key
from tests.support.hostile_server import HostileServer, response, serving
from tests.support.images import image_bytes
from tests.support.pipeline import snapshot
from tests.support.urls import awkward_urls, unaccounted_lines

JPEG = frozenset({"image/jpeg"})
ALLOWED = ("127.0.0.1", "i.imgur.com")
FULL_WIDTH_COLON = "http://127.0.0.1\uff1a8080/x.jpg"
UNCLOSED_BRACKET = "http://[::1/x.jpg"
IMAGE = StoredImage(sha256="ab" * 32, format="JPEG", bytes=1, width=1, height=1)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
ON_DISK = settings(FUZZ, max_examples=100)  # examples that write files: fewer


@pytest.fixture(scope="module")
def good() -> Iterator[HostileServer]:
    with serving(HostileServer()) as server:
        server.routes["/a.jpg"] = response("200 OK", image_bytes(1))
        yield server


def listing_of(urls: list[str]) -> list[Link]:
    """``urls`` as an Imgur listing's image links (lone surrogates skipped there)."""
    builder = _ListingBuilder()
    for number, url in enumerate(urls):
        builder.add_image({"id": f"i{number}", "link": url, "type": "image/jpeg"})
    return builder.listing().links


def manifest_of(urls: list[str], *, stored: bool = False) -> Manifest:
    """A manifest listing each of ``urls`` as a failed image and as a skipped link (stored
    images with ``stored``)."""
    links = listing_of(urls)
    selection = select_links(links, mime_types=JPEG, allowed_hosts=ALLOWED)
    records = [
        ImageRecord(url=link.url, id=link.id, rank=link.rank, status="failed", error="x")
        if not stored
        else ImageRecord(
            url=link.url,
            id=link.id,
            rank=link.rank,
            status="downloaded",
            path=f"images/ab/ab/{IMAGE.sha256}.jpg",
            sha256=IMAGE.sha256,
            bytes=1,
            width=1,
            height=1,
            format="JPEG",
        )
        for link in links
    ]
    return build_manifest(
        snapshot_id="s1",
        started_at="a",
        finished_at="b",
        source={"kind": "urls"},
        link_count=len(links),
        records=records,
        skipped=selection.skipped,
    )


# -- the two examples that failed a whole snapshot ------------------------------------------


def test_a_urls_file_with_an_unclosed_bracket_or_a_full_width_colon_still_writes_its_snapshot(
    good: HostileServer, tmp_path: Path
) -> None:
    urls = tmp_path / "urls.txt"
    lines = [UNCLOSED_BRACKET, FULL_WIDTH_COLON, f"{good.base_url}/a.jpg"]
    urls.write_text("\n".join(lines) + "\n", encoding="utf-8")
    manifest = snapshot(tmp_path / "out", urls)
    assert [image["status"] for image in manifest["images"]] == ["downloaded"]
    assert [item["reason"][:21] for item in manifest["skipped"]] == [
        "line 1: malformed URL",
        "line 2: malformed URL",
    ]
    assert (tmp_path / "out" / "snapshots" / manifest["snapshot_id"] / "index.html").is_file()


def test_a_listing_link_with_a_full_width_colon_is_skipped_and_the_page_still_renders() -> None:
    manifest = manifest_of([FULL_WIDTH_COLON, "https://i.imgur.com/a.jpg"])
    [skipped] = manifest.skipped()
    assert skipped.url == FULL_WIDTH_COLON
    assert skipped.reason.startswith("malformed URL: ")
    page = render_page(manifest).decode("utf-8")
    assert f"<td>{FULL_WIDTH_COLON}</td>" in page


# -- every entry point, over generated URLs ---------------------------------------------------


@FUZZ
@given(st.lists(awkward_urls(ALLOWED, surrogates=True), max_size=8))
def test_selection_makes_every_link_a_selection_or_a_skip(urls: list[str]) -> None:
    links = [Link(url=url, id=f"i{n}", rank=n + 1, type="image/jpeg") for n, url in enumerate(urls)]
    selection = select_links(links, mime_types=JPEG, allowed_hosts=ALLOWED)
    assert len(selection.selected) + len(selection.skipped) == len(links)
    assert all(item.reason for item in selection.skipped)
    for link in selection.selected:
        assert parse_image_url(link.url).host in ALLOWED
        normalize_url(link.url)


@FUZZ
@given(awkward_urls(ALLOWED, surrogates=True))
def test_parsing_and_host_checks_raise_nothing_but_a_url_problem(url: str) -> None:
    reason = url_rejection(url, allowed_hosts=frozenset(ALLOWED))
    try:
        parsed = parse_image_url(url)
        key = normalize_url(url)
    except UrlProblem as exc:
        assert reason == str(exc) and "\n" not in reason
        reason.encode("utf-8")  # fit for the manifest
        return
    assert reason is None or reason.startswith("host ")
    assert key == parsed.key
    assert parse_image_url(key).host == parsed.host  # the key is a URL of the same host
    key.encode("utf-8")


@ON_DISK
@given(st.lists(awkward_urls(ALLOWED).map(lambda url: url.replace("\n", "")), max_size=20))
def test_every_urls_file_line_is_a_link_or_a_skip(tmp_path_factory: Any, lines: list[str]) -> None:
    path = tmp_path_factory.mktemp("urls") / "urls.txt"
    text = "\n".join(lines)  # not read back: read_text would take a lone \r for a line end
    path.write_text(text, encoding="utf-8")
    listing = list_urls_file(str(path))
    urls = [link.url for link in listing.links]
    reasons = [item.reason for item in listing.skipped]
    assert unaccounted_lines(text, urls, reasons) == []


@ON_DISK
@given(st.lists(awkward_urls(ALLOWED, surrogates=True), max_size=8))
def test_page_report_and_manifest_render_any_url(tmp_path_factory: Any, urls: list[str]) -> None:
    manifest = manifest_of(urls)
    render_page(manifest).decode("utf-8")
    markdown_report(with_changes(manifest, manifest)).encode("utf-8")
    encoded = encode_manifest(manifest)
    assert json.loads(encoded) == manifest.as_document()
    write_manifest(str(tmp_path_factory.mktemp("out")), manifest)


@ON_DISK
@given(st.lists(awkward_urls(ALLOWED, surrogates=True), max_size=8))
def test_index_keys_of_any_url_never_fail(tmp_path_factory: Any, urls: list[str]) -> None:
    """A URL that can be requested has a key, in the URL index and on an object store; one
    that does not parse has none (it is never looked up either)."""
    catalog = SqliteIndex(tmp_path_factory.mktemp("index") / "index.sqlite")
    catalog.create()
    catalog.remember(IndexEntry(url, IMAGE) for url in urls)
    found = catalog.lookup(urls)
    assert set(found) <= set(urls)
    for url in urls:
        keyed = url_key(url) is not None
        assert (url in found) == keyed == (url_hash(url) is not None)
        assert (index_key(url, IMAGE) is not None) == keyed
        assert keyed or image_url(url) is None


@ON_DISK
@given(st.lists(awkward_urls(ALLOWED, surrogates=True), min_size=1, max_size=8))
def test_the_url_index_is_rebuilt_from_manifests_holding_any_url(
    tmp_path_factory: Any, urls: list[str]
) -> None:
    """A manifest names URLs an older version, or anything at all, wrote: lone surrogates
    too, as JSON escapes."""
    out = tmp_path_factory.mktemp("out")
    document = manifest_of(["https://i.imgur.com/a.jpg"], stored=True).as_document()
    [image] = document["images"]
    document["images"] = [{**image, "url": url, "rank": n + 1} for n, url in enumerate(urls)]
    (out / "snapshots" / "s1").mkdir(parents=True)
    (out / "snapshots" / "s1" / "manifest.json").write_text(json.dumps(document))
    rebuild_index(Store(out))
    keyed = [url for url in urls if url_key(url) is not None]
    assert set(Store(out).index.lookup(urls)) == set(keyed)
