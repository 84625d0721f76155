"""One bad item fails only itself: any JSON value in any field of a listing item goes through
the listing parser, selection, naming and the manifest without an exception; an album whose
images cannot be listed is skipped with the reason, the rest of the listing kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gallery_snapshot.config import SourceSpec
from gallery_snapshot.demo_gallery import DemoGallery
from gallery_snapshot.downloader import staged_name
from gallery_snapshot.errors import ApiError
from gallery_snapshot.http import Backoff
from gallery_snapshot.imgur_api import ImgurClient
from gallery_snapshot.manifest import build_manifest, write_manifest
from gallery_snapshot.models import ImageRecord
from gallery_snapshot.selection import select_links
from gallery_snapshot.sources.imgur import _add_item, _ListingBuilder, list_imgur

FIELDS = ["id", "link", "type", "animated", "is_album", "images", "title"]
# Text with lone surrogates (what JSON's \ud800 escapes decode to) and URL-ish pieces.
texts = st.one_of(
    st.text(st.characters(codec=None), max_size=12),
    st.sampled_from(["\ud800", "a\udfffb", "https://i.imgur.com/\ud800.jpg", "image/jpeg"]),
    st.from_regex(r"https?://i\.imgur\.com(:\d{1,6})?/[^\s]{0,12}", fullmatch=True),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(FIELDS) | texts, children, max_size=4)
    ),
    max_leaves=12,
)
items = st.one_of(
    json_values,
    st.fixed_dictionaries({}, optional={field: json_values for field in FIELDS}),
    st.fixed_dictionaries(
        {"id": texts, "link": texts, "type": st.just("image/jpeg")},
        optional={"is_album": st.booleans(), "images": json_values},
    ),
)


class FailingClient:
    def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        raise ApiError(f"the API has nothing at /{path} (404)", status=404)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(items, max_size=6))
def test_any_listing_item_ends_as_a_link_or_a_skip_and_the_manifest_is_written(
    tmp_path_factory: Any, raw_items: list[Any]
) -> None:
    builder = _ListingBuilder()
    for raw in raw_items:
        _add_item(builder, FailingClient(), raw)  # type: ignore[arg-type]
    listing = builder.listing()
    selection = select_links(
        listing.links, mime_types=frozenset({"image/jpeg"}), allowed_hosts=["i.imgur.com"]
    )
    records = [
        ImageRecord(url=link.url, id=link.id, rank=link.rank, status="failed", error="x")
        for link in selection.selected
    ]
    for link in selection.selected:
        assert "/" not in staged_name(link)
    manifest = build_manifest(
        snapshot_id="s",
        started_at="t",
        finished_at="t",
        source={"kind": "gallery"},
        link_count=len(listing.links),
        records=records,
        skipped=listing.skipped + selection.skipped,
    )
    out = tmp_path_factory.mktemp("out")
    path = write_manifest(str(out), manifest)
    assert json.loads(Path(path).read_text("utf-8"))["counts"]["selected"] == len(records)


def test_lone_surrogates_are_skipped_with_a_reason() -> None:
    builder = _ListingBuilder()
    _add_item(builder, None, {"id": "\ud800", "link": "https://i.imgur.com/a.jpg"})  # type: ignore[arg-type]
    _add_item(builder, None, {"id": "b", "link": "https://i.imgur.com/\udfff.jpg"})  # type: ignore[arg-type]
    _add_item(builder, None, {"id": "c", "link": "https://i.imgur.com/c.jpg"})  # type: ignore[arg-type]
    listing = builder.listing()
    assert [link.id for link in listing.links] == ["c"]
    assert [item.reason for item in listing.skipped] == [
        "malformed image item: id: not valid Unicode (a lone surrogate)",
        "malformed image item: link: not valid Unicode (a lone surrogate)",
    ]
    json.dumps([item.model_dump() for item in listing.skipped], ensure_ascii=False).encode()


def api(gallery: DemoGallery) -> ImgurClient:
    return ImgurClient(
        gallery.api_url, gallery.client_id, attempts=2, backoff=Backoff(base=0, cap=0, jitter=0)
    )


def test_an_album_whose_images_cannot_be_listed_is_skipped_alone(gallery: DemoGallery) -> None:
    gallery.state.faults["/3/album/AlbLazy/images"] = ["404"]
    listing = list_imgur(SourceSpec(api_url=gallery.api_url, pages=2), api(gallery))
    assert "AlbLazy" not in {link.album for link in listing.links}
    assert "AlbEmbd" in {link.album for link in listing.links}
    [album] = [item for item in listing.skipped if item.id == "AlbLazy"]
    assert (
        album.reason
        == "album images not listed: the API has nothing at /album/AlbLazy/images (404)"
    )


def test_an_album_whose_images_keep_failing_is_skipped_alone(gallery: DemoGallery) -> None:
    gallery.state.faults["/3/album/AlbLazy/images"] = ["500", "500"]
    listing = list_imgur(SourceSpec(api_url=gallery.api_url, pages=2), api(gallery))
    [album] = [item for item in listing.skipped if item.id == "AlbLazy"]
    assert album.reason.startswith("album images not listed: the API at")
    assert len(listing.links) > 10
