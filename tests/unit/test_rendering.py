"""The UI shows what a listing says, never what it injects: over hostile listings (ids, URLs,
types, reasons full of markdown, HTML, autolinks, backticks and control characters), every
artifact, page, log line and error message the project makes holds only the links and images
the project itself made, and shows the listing's text as text."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gallery_snapshot.changes import LISTS, with_changes
from gallery_snapshot.config import SourceSpec
from gallery_snapshot.errors import ApiError
from gallery_snapshot.escaping import md_code, one_line, unlinked
from gallery_snapshot.http import Backoff
from gallery_snapshot.imgur_api import ImgurClient
from gallery_snapshot.manifest import build_manifest
from gallery_snapshot.models import ImageRecord, Manifest, SkippedLink
from gallery_snapshot.reports.problems import markdown_report
from gallery_snapshot.reports.summary import summary_rows
from gallery_snapshot.snapshot_page import render_page
from gallery_snapshot.sources.imgur import list_imgur, page_paths
from tests.support.hostile_server import HostileServer, response, serving
from tests.support.rendering import inline_text, parse_page, render_markdown

SHA = "ab" * 32
STORED_PATH = f"images/ab/ab/{SHA}.jpg"
# Pieces a hostile listing strings together: markdown links and images, raw HTML, autolinks,
# bare URLs GFM links, entities, backticks, table pipes, line breaks, terminal escapes, bidi.
PIECES = [
    "x](javascript:alert(1)) [y",
    "![p](http://tracker.example/p.png)",
    "[t](http://evil.example/)",
    "<http://evil.example/a>",
    "<evil@example.com>",
    "http://evil.example/b",
    "https://evil.example/c?d=e",
    "ftp://evil.example/f",
    "www.evil.example",
    "mail@evil.example",
    "mailto:mail@evil.example",
    '<img src="http://tracker.example/i.png">',
    "<a href='http://evil.example/'>x</a>",
    "<script>alert(1)</script>",
    "<!-- x -->",
    "&#106;avascript:&#x61;lert(1)",
    "[ref]",
    "[ref]: http://evil.example/ref",
    "`",
    "``",
    "\\",
    "|",
    "*",
    "_",
    "# ",
    "- ",
    "> ",
    " ",
    "\n",
    "\r\n",
    "\n\n[ref]: http://evil.example/ref\n",
    "\x1b[31m",
    "\x07",
    "\u2028",
    "\u202e",
    "\u200b",
    "\ud800",
]
hostile_text = st.one_of(
    st.lists(st.sampled_from(PIECES) | st.text(max_size=4), max_size=6).map("".join),
    st.text(st.characters(codec=None), max_size=16),
)
STATUSES = ["downloaded", "reused", "invalid", "gone", "failed"]


@st.composite
def hostile_manifests(draw: st.DrawFn) -> tuple[Manifest, Manifest]:
    """A manifest and its previous one, every listing-made field hostile."""

    def images() -> list[ImageRecord]:
        records = []
        for rank in range(1, draw(st.integers(0, 6)) + 1):
            status = draw(st.sampled_from(STATUSES))
            stored = status in ("downloaded", "reused")
            records.append(
                ImageRecord(
                    url=draw(hostile_text),
                    id=draw(hostile_text),
                    rank=rank,
                    status=status,  # type: ignore[arg-type]
                    path=STORED_PATH if stored else None,
                    sha256=SHA if stored else None,
                    width=1 if stored else None,
                    height=1 if stored else None,
                    format=draw(hostile_text) if stored else None,
                    error=None if stored else draw(hostile_text),
                )
            )
        return records

    def manifest(snapshot_id: str) -> Manifest:
        skipped = draw(
            st.lists(st.builds(SkippedLink, url=hostile_text, reason=hostile_text), max_size=6)
        )
        records = images()
        return build_manifest(
            snapshot_id=snapshot_id,
            started_at="2026-01-01T00:00:00+00:00",
            finished_at="2026-01-01T00:00:01+00:00",
            source={"kind": "gallery"},
            link_count=len(records) + len(skipped),
            records=records,
            skipped=skipped,
        )

    return manifest("20260102T000000Z-bbbbbb"), manifest("20260101T000000Z-aaaaaa")


def outside_texts(manifest: Manifest, *, stored: bool = True) -> list[str]:
    """Every value of ``manifest`` a listing (or a server) chose; of its stored images too
    unless ``stored`` is false (the report lists the problems only)."""
    texts = []
    for image in manifest.images():
        if stored or image.status not in ("downloaded", "reused"):
            texts += [image.id, image.url, image.error or ""]
    for item in manifest.skipped():
        texts += [item.url, item.reason]
    return texts


ONE_IMAGE = {
    "url": "https://i.example/a.jpg",
    "rank": 1,
    "status": "downloaded",
    "path": STORED_PATH,
    "sha256": SHA,
}


def hostile_example(text: str) -> tuple[Manifest, Manifest]:
    """``text`` as every listing-made value of a manifest and of its previous one."""

    def manifest(snapshot_id: str, image_id: str) -> Manifest:
        records = [
            ImageRecord(**{**ONE_IMAGE, "id": image_id, "url": image_id}),  # type: ignore[arg-type]
            ImageRecord(url=text, id=text, rank=2, status="failed", error=text),
        ]
        return build_manifest(
            snapshot_id=snapshot_id,
            started_at="a",
            finished_at="b",
            source={},
            link_count=3,
            records=records,
            skipped=[SkippedLink(url=text, id=text, reason=text)],
        )

    return manifest("20260102T000000Z-bbbbbb", text), manifest("20260101T000000Z-aaa", text + "1")


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(hostile_manifests())
@example(hostile_example("x](javascript:alert(1)) [y"))
@example(hostile_example("image/png ![p](http://tracker.example/p.png)"))
@example(hostile_example("see http://evil.example/ or <http://evil.example/a>"))
@example(hostile_example('<img src="http://tracker.example/i.png">'))
@example(hostile_example("``a`b``` and line\n\n[ref]: http://evil.example/\n[x][ref]"))
def test_a_hostile_listing_makes_no_link_image_or_html_in_the_report(
    manifests: tuple[Manifest, Manifest],
) -> None:
    first, previous = manifests
    current = with_changes(first, previous)
    assert current.header.changes is not None
    listed = [url for name in LISTS for url in getattr(current.header.changes, name)]
    for report, ids in ((markdown_report(current), listed), (markdown_report(first), [])):
        rendered = render_markdown(report)
        assert rendered.links == [] and rendered.images == [] and rendered.html == []
        assert rendered.bare_urls == []
        # What the listing said is there to read, exactly (on one line).
        shown = set(rendered.code)
        for text in outside_texts(current, stored=False) + ids:
            assert not one_line(text) or one_line(text) in shown


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(hostile_manifests())
@example(hostile_example("x](javascript:alert(1)) [y"))
@example(hostile_example('see http://evil.example/ <img src="http://tracker.example/i.png">'))
def test_a_hostile_listing_makes_no_link_or_image_in_the_snapshot_page(
    manifests: tuple[Manifest, Manifest],
) -> None:
    first, previous = manifests
    manifest = with_changes(first, previous)
    page = parse_page(render_page(manifest, previous).decode())
    assert page.handlers == []
    assert page.tags <= {
        *("html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "a", "span"),
        *("b", "div", "figure", "img", "figcaption", "br", "table", "tr", "th", "td"),
    }
    own = {"manifest.json", f"../../{STORED_PATH}", "../../index.html"}
    own.add(f"../{previous.snapshot_id}/index.html")
    assert {value for _, _, value in page.urls} <= own, page.urls
    text = "".join(page.text)
    for value in outside_texts(manifest):
        assert one_line(value) in text


def test_summary_cells_render_as_themselves_as_text_or_as_markdown() -> None:
    """Prefect's UI v2 shows a table cell as text, v1 renders it as markdown: both must show
    the same thing, with no link."""
    manifest, _ = hostile_example("x](javascript:alert(1)) http://evil.example/")
    for row in summary_rows(manifest, seconds=2.5):
        for cell in row.values():
            rendered = render_markdown(str(cell))
            assert rendered.links == rendered.images == rendered.html == rendered.bare_urls == []
            assert inline_text(str(cell)) == str(cell)


def test_the_contact_sheet_artifact_holds_its_own_image_only(tmp_path: Path) -> None:
    from gallery_snapshot.reports.contact_sheet import ContactSheet, contact_sheet_markdown

    location = str(tmp_path / "`x` ](javascript:alert(1)) http://evil.example/contact-sheet.jpg")
    sheet = ContactSheet(location=location, data=b"\xff\xd8jpeg", shown=3, stored=3)
    rendered = render_markdown(contact_sheet_markdown(sheet, "20260101T000000Z-aaaaaa"))
    assert rendered.links == [] and rendered.html == [] and rendered.bare_urls == []
    assert rendered.images == ["data:image/jpeg;base64,/9hqcGVn"]
    assert location in rendered.code


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(codec=None)) | hostile_text)
@example("`")
@example(" `` ")
@example("   ")
@example("a`")
def test_a_code_span_shows_exactly_the_text_on_one_line(text: str) -> None:
    rendered = render_markdown(f"- **x** {md_code(text)}: {md_code(text)}.")
    assert rendered.links == rendered.images == rendered.html == rendered.bare_urls == []
    assert rendered.code == ([one_line(text)] * 2 if text else [])


def test_one_line_shows_control_format_and_separator_characters_as_escapes() -> None:
    assert one_line("a\nb\r\n\tc") == "a\\nb\\r\\n\\tc"
    assert one_line("\x1b[31mred\x07") == "\\x1b[31mred\\x07"
    assert one_line("\u202egpj.exe\u2028\u200b\ud800") == "\\u202egpj.exe\\u2028\\u200b\\ud800"
    assert one_line("plain ünïcødé 🙂 text") == "plain ünïcødé 🙂 text"
    assert one_line(None) == "None"
    assert unlinked("see https://evil.example/\nx") == "see https[:]//evil.example/\\nx"


HOSTILE_ERROR = (
    "bad request\n2026-01-01 00:00:00 CRITICAL forged line\x1b[31m"
    " [click](javascript:alert(1)) https://evil.example/\u2028more"
)


def api_error(status: str, body: dict[str, Any] | None = None) -> bytes:
    payload = json.dumps(body or {}).encode()
    return response(status, payload, b"Content-Type: application/json")


@pytest.mark.parametrize(
    "answer",
    [
        api_error("403 Forbidden", {"data": {"error": HOSTILE_ERROR}}),
        api_error("400 Bad Request", {"errors": [{"detail": HOSTILE_ERROR}]}),
        response("418 Teapot\x1b[31m https://evil.example/", b"not json"),
    ],
    ids=["imgur-error", "errors-list", "reason-phrase"],
)
def test_an_api_error_text_is_one_line_with_no_link(answer: bytes) -> None:
    with serving(HostileServer()) as server:
        server.routes["/3/gallery/hot/0"] = answer
        client = ImgurClient(f"{server.base_url}/3", "id", attempts=1)
        with pytest.raises(ApiError) as raised:
            client.get("gallery/hot/0")
    message = str(raised.value)
    assert one_line(message) == message and "://evil" not in message
    assert "evil.example" in message  # shown, not dropped


def test_retried_api_errors_log_one_line_each_with_no_link(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with serving(HostileServer()) as server:
        server.routes["/3/gallery/hot/0"] = api_error(
            "500 Internal Server Error", {"data": {"error": HOSTILE_ERROR}}
        )
        client = ImgurClient(
            f"{server.base_url}/3", "id", attempts=3, backoff=Backoff(base=0, cap=0, jitter=0)
        )
        with caplog.at_level(logging.WARNING), pytest.raises(ApiError) as raised:
            client.get("gallery/hot/0")
    messages = [record.getMessage() for record in caplog.records] + [str(raised.value)]
    assert len(messages) == 3
    for message in messages:
        assert one_line(message) == message and "://evil" not in message
        assert re.search(r"forged line\\x1b\[31m \[click\]\(javascript:alert\(1\)\) ", message)


def test_an_album_id_with_a_line_break_is_skipped_and_logs_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An album id is the one listing field that goes into API paths, and so into the retry
    warnings and errors of the run's logs: a plain name, all of it, or the album is skipped."""
    album = {"id": "AlbLazy\n", "is_album": True, "link": "https://imgur.com/a/AlbLazy"}
    with serving(HostileServer()) as server:
        [(page, query)] = page_paths(SourceSpec(pages=1))
        server.routes[f"/3/{page}?{urlencode(query)}"] = api_error("200 OK", {"data": [album]})
        server.routes["/3/album/AlbLazy%0A/images"] = api_error(
            "500 Internal Server Error", {"data": {"error": HOSTILE_ERROR}}
        )
        client = ImgurClient(
            f"{server.base_url}/3", "id", attempts=3, backoff=Backoff(base=0, cap=0, jitter=0)
        )
        with caplog.at_level(logging.WARNING):
            listing = list_imgur(SourceSpec(pages=1), client)
    messages = [record.getMessage() for record in caplog.records]
    assert [one_line(message) for message in messages] == messages
    [skipped] = listing.skipped
    assert skipped.reason == "malformed album: id: not a plain album id"
