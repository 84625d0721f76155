"""The host checked is the host connected to: a differential corpus of URLs (known tricks and
generated strings) through a listing link, a ``--urls-file`` line and a redirect ``Location``,
against a real trap server on 127.0.0.2 that must never see a connection."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from urllib3.util import parse_url

from gallery_snapshot.config import SnapshotConfig
from gallery_snapshot.downloader import DownloadOptions, fetch_batch
from gallery_snapshot.http import Backoff
from gallery_snapshot.models import Link
from gallery_snapshot.selection import UrlProblem, parse_image_url, select_links
from gallery_snapshot.sources.imgur import _ListingBuilder
from gallery_snapshot.sources.urls_file import list_urls_file
from tests.support.hostile_server import TRAP_HOST, HostileServer, response, serving
from tests.support.images import image_bytes
from tests.support.urls import awkward_urls

JPEG = frozenset({"image/jpeg"})
ALLOWED = frozenset({"127.0.0.1"})


@pytest.fixture(scope="module")
def trap() -> Iterator[HostileServer]:
    with serving(HostileServer(TRAP_HOST, trap=True)) as server:
        yield server


@pytest.fixture(scope="module")
def good() -> Iterator[HostileServer]:
    with serving(HostileServer()) as server:
        server.routes["/a.jpg"] = response("200 OK", image_bytes(1))
        yield server


def tricks(trap: HostileServer, good: HostileServer) -> list[str]:
    t, g, tp, gp = f"{TRAP_HOST}:{trap.port}", f"127.0.0.1:{good.port}", trap.port, good.port
    return [
        f"http://{t}/a.jpg",
        f"http://{t}\\@{g}/a.jpg",
        f"http://{t}\\\\@{g}/a.jpg",
        f"http://{t}\\{g}/a.jpg",
        f"http://{g}@{t}/a.jpg",
        f"http://i.imgur.com@{t}/a.jpg",
        f"http://{g}:{tp}@{t}/a.jpg",
        f"http://{t}%2f@{g}/a.jpg",
        f"http://{t}%40{g}/a.jpg",
        f"http://{g}#@{t}/a.jpg",
        f"http://{g}?@{t}/a.jpg",
        f"http://{t};@{g}/a.jpg",
        f"http:\\\\{t}/a.jpg",
        f"http:/{t}/a.jpg",
        f"http:{t}/a.jpg",
        f"//{t}/a.jpg",
        f" http://{t}/a.jpg",
        f"http://{t}\t/a.jpg",
        f"http://127.0.0.\n2:{tp}/a.jpg",
        f"http://127.0.0.1\t.2:{tp}/a.jpg",
        f"http://{t}\x00@{g}/a.jpg",
        f"http://127.0.0.%32:{tp}/a.jpg",
        f"http://127.2:{tp}/a.jpg",
        f"http://2130706434:{tp}/a.jpg",
        f"http://0x7f.0.0.2:{tp}/a.jpg",
        f"http://0177.0.0.2:{tp}/a.jpg",
        f"http://[::ffff:127.0.0.2]:{tp}/a.jpg",
        f"http://[::ffff:7f00:2]:{tp}/a.jpg",
        f"http://127.0.0.1:{tp}:{gp}/a.jpg",
        f"http://127.0.0.1:0{gp}/a.jpg",
        f"http://127.0.0.1:+{gp}/a.jpg",
        "http://127.0.0.1:99999/a.jpg",
        f"http://[127.0.0.2]:{tp}/a.jpg",
        "http://[::1/a.jpg",
        f"http://127.0.0.2\uff0e:{tp}/a.jpg",
        f"http://127\u30020.0.2:{tp}/a.jpg",
        f"http://{t}\\@{g}/a.jpg".upper(),
        f"HTTP://127.0.0.2\\@127.0.0.1:{gp}/a.jpg",
        f"http://127.0.0.2:{tp}\\@127.0.0.1:{gp}/a.jpg",
    ]


def download(links: list[Link], out: Path) -> None:
    selection = select_links(links, mime_types=JPEG, allowed_hosts=ALLOWED)
    options = DownloadOptions(
        out_dir=str(out),
        snapshot_id="s",
        allowed_hosts=ALLOWED,
        timeout=2,
        attempts=1,
        deadline=5,
        backoff=Backoff(base=0, cap=0, jitter=0),
    )
    results = fetch_batch(selection.selected, options)
    assert len(results) + len(selection.skipped) == len(links)
    # The downloader checks for itself: given every link, unselected, each ends as a result.
    assert [result.link for result in fetch_batch(links, options)] == links


def through_listing(url: str, out: Path) -> None:
    builder = _ListingBuilder()
    builder.add_image({"id": "x", "link": url, "type": "image/jpeg"})
    download(builder.listing().links, out)


def through_urls_file(url: str, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    urls = out / "urls.txt"
    urls.write_bytes(url.encode("utf-8", "surrogatepass") + b"\n")
    try:
        listing = list_urls_file(str(urls))
    except Exception:  # an unreadable file is a ConfigError, never a request
        return
    download(listing.links, out)


def through_redirect(url: str, out: Path, good: HostileServer) -> None:
    path = f"/r{abs(hash(url))}"
    location = url.encode("utf-8", "backslashreplace").replace(b"\r", b"").replace(b"\n", b"")
    good.routes[path] = response("302 Found", b"", b"Location: " + location)
    download([Link(url=good.base_url + path, id="r", rank=1, type="image/jpeg")], out)


def check_all_paths(url: str, out: Path, trap: HostileServer, good: HostileServer) -> None:
    through_listing(url, out / "listing")
    through_urls_file(url, out / "file")
    through_redirect(url, out / "redirect", good)
    assert trap.connections == 0, f"{url!r} reached the trap"


def test_known_tricks_never_reach_a_foreign_host(
    trap: HostileServer, good: HostileServer, tmp_path: Path
) -> None:
    for url in tricks(trap, good):
        check_all_paths(url, tmp_path, trap, good)


def test_generated_urls_never_reach_a_foreign_host(
    trap: HostileServer, good: HostileServer, tmp_path: Path
) -> None:
    own = [f"{TRAP_HOST}:{trap.port}", f"127.0.0.1:{good.port}", TRAP_HOST, "127.0.0.1"]
    ports = [str(trap.port), str(good.port), f":{trap.port}", f":{good.port}"]

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(awkward_urls([*own, *ports, "i.imgur.com", "::ffff:"], surrogates=True))
    def check(url: str) -> None:
        check_all_paths(url, tmp_path, trap, good)

    check()


def test_an_allowed_link_is_still_downloaded(good: HostileServer, tmp_path: Path) -> None:
    link = Link(url=f"{good.base_url}/a.jpg", id="a", rank=1, type="image/jpeg")
    options = DownloadOptions(out_dir=str(tmp_path), snapshot_id="s", allowed_hosts=ALLOWED)
    [result] = fetch_batch([link], options)
    assert result.status == "fetched"


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=40), st.from_regex(r"https?://[^/]{0,20}/?.{0,5}")))
def test_an_accepted_url_means_the_same_to_every_parser(url: str) -> None:
    """What ``parse_image_url`` accepts, urllib.parse, urllib3 and requests' prepared request
    all read as the same scheme, host and port."""
    try:
        parsed = parse_image_url(url)
    except UrlProblem:
        return
    split, by_urllib3 = urlsplit(url), parse_url(url)
    assert (split.scheme.lower(), split.port) == (parsed.scheme, parsed.port)
    assert by_urllib3.scheme == parsed.scheme and by_urllib3.port == parsed.port
    prepared = requests.Request("GET", url).prepare()  # what the downloader sends
    assert parse_image_url(prepared.url or "").host == parsed.host


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.2\\@127.0.0.1/a.jpg", "ambiguous URL"),
        ("http://127.0.0.1:99999/a.jpg", "malformed URL"),
        ("http://127.0.0.1:x/a.jpg", "malformed URL"),
        ("http://[::1/a.jpg", "malformed URL"),
        ("http://[zz::1]/a.jpg", "malformed URL"),
        ("http://\uff49.imgur.com/a.jpg", "malformed URL"),
        ("http://a..b/a.jpg", "malformed URL"),
        ("http://127.0.0.1\t/a.jpg", "ambiguous URL"),
    ],
)
def test_bad_links_are_skipped_with_the_reason(url: str, reason: str) -> None:
    link = Link(url=url, id="x", rank=1, type="image/jpeg")
    selection = select_links([link], mime_types=JPEG, allowed_hosts=ALLOWED)
    assert selection.selected == []
    assert selection.skipped[0].reason.startswith(reason)


@pytest.mark.parametrize("spelling", ["[::1]", "::1", "[0:0::1]", "[::0001]"])
def test_ipv6_literals_can_be_allowed(spelling: str) -> None:
    hosts = SnapshotConfig(allowed_hosts=[spelling]).allowed_hosts
    assert hosts == ["[::1]"]
    links = [
        Link(url="http://[::1]:8080/a.jpg", id="a", rank=1, type="image/jpeg"),
        Link(url="http://[0::1]/b.jpg", id="b", rank=2, type="image/jpeg"),
        Link(url="http://[::2]/c.jpg", id="c", rank=3, type="image/jpeg"),
    ]
    selection = select_links(links, mime_types=JPEG, allowed_hosts=hosts)
    assert [link.id for link in selection.selected] == ["a", "b"]
    assert selection.skipped[0].reason == "host [::2] is not allowed"


@pytest.mark.parametrize(
    ("location", "error"),
    [
        ("http://[::1/x.jpg", "malformed redirect Location: Invalid IPv6 URL"),
        ("http://127.0.0.1:99999/x.jpg", "redirect to malformed URL"),
        ("http://\uff49.example/x.jpg", "redirect to malformed URL"),
        ("http://127.0.0.2\\@127.0.0.1/x.jpg", "redirect to ambiguous URL"),
    ],
)
def test_a_malformed_redirect_fails_only_its_image(
    good: HostileServer, tmp_path: Path, location: str, error: str
) -> None:
    good.routes["/bad-redirect"] = response(
        "302 Found", b"", b"Location: " + location.encode("utf-8")
    )
    links = [
        Link(url=f"{good.base_url}/bad-redirect", id="r", rank=1, type="image/jpeg"),
        Link(url=f"{good.base_url}/a.jpg", id="a", rank=2, type="image/jpeg"),
    ]
    options = DownloadOptions(out_dir=str(tmp_path), snapshot_id="s", allowed_hosts=ALLOWED)
    redirected, ok = fetch_batch(links, options)
    assert redirected.status == "failed" and (redirected.error or "").startswith(error)
    assert ok.status == "fetched"
