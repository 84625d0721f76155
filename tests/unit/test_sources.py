import os
from pathlib import Path

import pytest

from gallery_snapshot.config import SourceSpec
from gallery_snapshot.demo_gallery import DemoGallery
from gallery_snapshot.errors import ConfigError
from gallery_snapshot.sources import list_links
from gallery_snapshot.sources.imgur import page_paths
from gallery_snapshot.sources.urls_file import list_urls_file


def test_gallery_pages_until_the_first_empty_page(gallery: DemoGallery) -> None:
    listing = list_links(SourceSpec(api_url=gallery.api_url, pages=10), client_id=gallery.client_id)
    pages = [path for path, _ in gallery.state.requests if path.startswith("/3/gallery/")]
    assert pages == [f"/3/gallery/hot/viral/day/{n}" for n in range(3)]
    assert [link.rank for link in listing.links] == list(range(1, len(listing.links) + 1))


def test_albums_are_expanded_with_or_without_embedded_images(gallery: DemoGallery) -> None:
    listing = list_links(SourceSpec(api_url=gallery.api_url, pages=2), client_id=gallery.client_id)
    by_album: dict[str | None, list[str]] = {}
    for link in listing.links:
        by_album.setdefault(link.album, []).append(link.id)
    assert by_album["AlbEmbd"] == ["Jpg003", "Jpg004", "Png002", "Jpg005"]
    assert by_album["AlbLazy"] == ["Jpg008", "Jpg009", "Jpg010"]
    assert gallery.state.requests_for("/3/album/AlbLazy/images") == [200]
    assert gallery.state.requests_for("/3/album/AlbEmbd/images") == []


def test_tag_subreddit_and_album_sources(gallery: DemoGallery) -> None:
    common = {"api_url": gallery.api_url}
    tag = list_links(SourceSpec(kind="tag", tag="cats", **common), client_id=gallery.client_id)
    sub = list_links(
        SourceSpec(kind="subreddit", subreddit="pics", **common), client_id=gallery.client_id
    )
    album = list_links(
        SourceSpec(kind="album", album="AlbLazy", **common), client_id=gallery.client_id
    )
    assert tag.links[0].id == sub.links[0].id == "Jpg001"
    assert "/3/gallery/r/pics/time/week/0" in [path for path, _ in gallery.state.requests]
    assert [link.id for link in album.links] == ["Jpg008", "Jpg009", "Jpg010"]


def test_malformed_items_are_skipped_with_a_reason_and_the_page_kept() -> None:
    from gallery_snapshot.sources.imgur import _add_item, _ListingBuilder

    builder = _ListingBuilder()
    for raw in [
        {"id": "ok", "link": "https://i.imgur.com/ok.jpg", "type": "image/jpeg"},
        {"id": "nolink", "type": "image/jpeg"},
        "a string",
        {"id": 5, "link": "https://i.imgur.com/5.jpg"},
    ]:
        _add_item(builder, None, raw)  # type: ignore[arg-type]
    listing = builder.listing()
    assert [link.id for link in listing.links] == ["ok"]
    assert [item.reason for item in listing.skipped] == [
        "malformed image item: link: Field required",
        "listing item is a str, not an object",
        "malformed image item: id: Input should be a valid string",
    ]


def test_imgur_sources_need_a_client_id() -> None:
    with pytest.raises(ConfigError, match="IMGUR_CLIENT_ID"):
        list_links(SourceSpec(), client_id=None)


def test_page_paths_use_the_listing_defaults() -> None:
    sub = SourceSpec(kind="subreddit", subreddit="pics", pages=2)
    assert [path for path, _ in page_paths(sub)] == [
        "gallery/r/pics/time/week/0",
        "gallery/r/pics/time/week/1",
    ]
    top = SourceSpec(section="top", sort="top", window="all")
    assert next(page_paths(top)) == (
        "gallery/top/top/all/0",
        {"mature": "false", "album_previews": "true", "showViral": "true"},
    )


def test_urls_file(tmp_path: Path) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text(
        "# my list\n\nhttps://i.imgur.com/a.jpg\n  https://i.imgur.com/b.png  \nnot-a-url\n"
    )
    listing = list_links(SourceSpec(kind="urls", urls_file=str(urls)), client_id=None)
    assert [(link.id, link.type, link.rank) for link in listing.links] == [
        ("https://i.imgur.com/a.jpg", "image/jpeg", 1),
        ("https://i.imgur.com/b.png", "image/png", 2),
    ]
    assert listing.skipped[0].reason == "line 5: not an http(s) URL"
    with pytest.raises(ConfigError, match="cannot read the URLs file"):
        list_links(SourceSpec(kind="urls", urls_file=str(tmp_path / "nope")), client_id=None)


def test_urls_file_lines_that_do_not_parse_are_skipped_alone(tmp_path: Path) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text(
        "http://i.imgur.com:99999/a.jpg\nhttp://[::1/b.jpg\nhttp://127.0.0.2\\@i.imgur.com/c.jpg\n"
        "https://i.imgur.com/ok.jpg\n"
    )
    listing = list_links(SourceSpec(kind="urls", urls_file=str(urls)), client_id=None)
    assert [link.url for link in listing.links] == ["https://i.imgur.com/ok.jpg"]
    assert [item.reason.split(":")[:2] for item in listing.skipped] == [
        ["line 1", " malformed URL"],
        ["line 2", " malformed URL"],
        ["line 3", " ambiguous URL"],
    ]


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"#\n" * 9 + b"\0" * 70_000, "line 10 is longer than 65536 bytes"),
        (b"#\n" * 11, "more than 10 lines"),
        (b"https://i.imgur.com/a.jpg\n" * 5, "more than 100 bytes"),
    ],
)
def test_urls_file_reading_is_capped(tmp_path: Path, content: bytes, error: str) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_bytes(content)
    with pytest.raises(ConfigError, match=error):
        list_urls_file(str(urls), max_lines=10, max_bytes=100 if len(content) < 1000 else 10**6)


def test_urls_file_from_dev_zero_or_a_fifo_stops_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="/dev/zero: not a regular file \\(a character device"):
        list_urls_file("/dev/zero")
    os.mkfifo(tmp_path / "fifo")  # nobody writes to it: opening it to read would wait forever
    with pytest.raises(ConfigError, match="fifo: not a regular file \\(a FIFO\\)"):
        list_urls_file(str(tmp_path / "fifo"))


def test_a_skipped_line_is_never_echoed_whole(tmp_path: Path) -> None:
    """Skipped lines land in the manifest, the page and the report: of a file that is not a
    list of URLs, they show the line number and reason only; of a URL-like line, its URL-like
    beginning, without userinfo, at most 200 characters."""
    secret = "SECRET-7f3a9c"
    urls = tmp_path / "urls.txt"
    urls.write_bytes(
        f"AWS_SECRET_ACCESS_KEY={secret}\0IMGUR_CLIENT_ID={secret}\n"
        f"password = {secret}\n"
        f"https://user:{secret}@i.imgur.com:99999/a.jpg\n"
        f"https://i.imgur.com:99999/{'a' * 300}\n"
        f"http://[::1/b.jpg\0{secret}\n"
        "https://i.imgur.com/ok.jpg\n".encode()
    )
    listing = list_urls_file(str(urls))
    assert [link.url for link in listing.links] == ["https://i.imgur.com/ok.jpg"]
    assert secret not in listing.model_dump_json()
    shown = [(item.url, item.reason.split(":")[0]) for item in listing.skipped]
    assert shown[:3] == [
        ("", "line 1"),
        ("", "line 2"),
        ("https://…@i.imgur.com:99999/a.jpg", "line 3"),
    ]
    assert shown[3][0].startswith("https://i.imgur.com:99999/aaa") and len(shown[3][0]) == 200
    assert shown[4] == ("http://[::1/b.jpg", "line 5")
    assert all(len(item.reason) <= 210 for item in listing.skipped)


def test_proc_self_environ_as_a_urls_file_shows_none_of_the_environment() -> None:
    """The terminal user may name any regular file, /proc/self/environ included: none of it
    is echoed."""
    values = [
        entry.split(b"=", 1)[1].decode(errors="replace")
        for entry in Path("/proc/self/environ").read_bytes().split(b"\0")
        if entry.count(b"=") and len(entry.split(b"=", 1)[1]) >= 6
    ]
    listing = list_urls_file("/proc/self/environ")
    assert listing.links == [] and values
    dump = listing.model_dump_json()
    assert not [value for value in values if value in dump]
    assert [(item.url, item.reason) for item in listing.skipped] == [
        ("", "line 1: not an http(s) URL")
    ]
