"""The ``changes`` block: what a snapshot found against the previous one of its source."""

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gallery_snapshot.changes import compare, with_changes
from gallery_snapshot.downloader import PLACEHOLDER_REASON
from gallery_snapshot.history import parse_header, previous_manifest, snapshots
from gallery_snapshot.manifest import encode_manifest, read_manifest, write_manifest
from gallery_snapshot.models import STORED, ImageRecord, Manifest
from tests.support.manifests import manifest_of

LISTS = ("new", "vanished", "came_back", "changed", "gone_http", "gone_placeholder", "gone_other")
# What became of a URL in one snapshot: not listed, stored (with content A or B), or not.
FATES = ("absent", "stored-a", "stored-b", "HTTP 404", "HTTP 410", PLACEHOLDER_REASON, "other")
LEGACY = Path(__file__).parents[1] / "data" / "legacy-store"


def record(url: str, rank: int, fate: str) -> ImageRecord:
    if fate.startswith("stored"):
        sha = fate[-1] * 64
        return ImageRecord(
            url=url, id=url, rank=rank, status="downloaded", path=f"images/{sha}", sha256=sha
        )
    status: Any = "failed" if fate == "other" and rank % 2 else "gone"
    return ImageRecord(url=url, id=url, rank=rank, status=status, error=fate)


def snapshot(snapshot_id: str, fates: dict[str, str]) -> Manifest:
    listed = [(url, fate) for url, fate in fates.items() if fate != "absent"]
    return manifest_of(snapshot_id, [record(u, r, f) for r, (u, f) in enumerate(listed, 1)])


def stored_urls(manifest: Manifest) -> set[str]:
    return {image.url for image in manifest.images() if image.status in STORED}


histories = st.dictionaries(
    st.sampled_from([f"http://h/{n}.jpg" for n in range(12)]),
    st.tuples(st.sampled_from(FATES), st.sampled_from(FATES)),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(histories)
def test_every_url_falls_in_exactly_one_kind_of_change(fates: dict[str, tuple[str, str]]) -> None:
    before = snapshot("20260101T000000Z-aaaaaa", {url: fate[0] for url, fate in fates.items()})
    after = snapshot("20260102T000000Z-bbbbbb", {url: fate[1] for url, fate in fates.items()})
    changes = compare(before, after)
    counts = changes.counts
    now, then = stored_urls(after), stored_urls(before)
    assert counts.new + counts.came_back + counts.changed + counts.unchanged == len(now)
    assert counts.vanished + counts.changed + counts.unchanged == len(then)
    for name in LISTS:
        assert getattr(counts, name) == len(getattr(changes, name))
    assert set(changes.new) | set(changes.came_back) == now - then
    assert set(changes.vanished) == then - now
    assert set(changes.changed) == {u for u in now & then if fates[u][0] != fates[u][1]}
    assert not set(changes.new) & {image.url for image in before.images()}
    gone = changes.gone_http + changes.gone_placeholder + changes.gone_other
    assert set(gone) <= set(changes.vanished) and len(set(gone)) == len(gone)
    assert all(fates[url][1] in ("HTTP 404", "HTTP 410") for url in changes.gone_http)
    assert all(fates[url][1] == PLACEHOLDER_REASON for url in changes.gone_placeholder)
    same = compare(after, after).counts
    assert same.model_dump() == {**{name: 0 for name in LISTS}, "unchanged": len(now)}


def test_the_five_kinds_of_change_of_a_gallery() -> None:
    first = snapshot(
        "20260101T000000Z-aaaaaa",
        {"a": "stored-a", "b": "stored-a", "c": "stored-a", "d": "stored-a", "e": "HTTP 404"},
    )
    second = snapshot(
        "20260102T000000Z-bbbbbb",
        {
            "a": "stored-a",
            "b": "stored-b",
            "c": PLACEHOLDER_REASON,
            "e": "stored-a",
            "f": "stored-a",
        },
    )
    changes = compare(first, second)
    assert changes.previous == first.snapshot_id
    assert (changes.new, changes.vanished, changes.came_back) == (["f"], ["c", "d"], ["e"])
    assert (changes.changed, changes.gone_placeholder, changes.gone_http) == (["b"], ["c"], [])
    assert changes.counts.unchanged == 1


def test_a_repeated_url_counts_once() -> None:
    records = [record("a", 1, "stored-a"), record("a", 2, "stored-a")]
    first = manifest_of("20260101T000000Z-aaaaaa", [])
    changes = compare(first, manifest_of("20260102T000000Z-bbbbbb", records))
    assert changes.new == ["a"] and changes.counts.new == 1


@pytest.mark.parametrize("object_store", [False, True])
def test_changes_are_written_with_the_manifest_and_old_manifests_still_read(
    tmp_path: Path, object_store: bool
) -> None:
    out = f"file://{tmp_path}/bucket" if object_store else str(tmp_path)
    first = snapshot("20260101T000000Z-aaaaaa", {"a": "stored-a"})
    second = snapshot("20260102T000000Z-bbbbbb", {"a": "stored-b"})
    write_manifest(out, first)
    recorded = with_changes(second, previous_manifest(out, second))
    location = write_manifest(out, recorded)
    assert read_manifest(location) == recorded
    assert read_manifest(location).header.changes == compare(first, second)
    listed = [s.header.changes for s in snapshots(out)]  # the history: counts, no URLs
    assert listed[0] is None and listed[1] is not None
    assert listed[1].counts == compare(first, second).counts and listed[1].changed == []
    legacy = sorted((LEGACY / "snapshots").glob("*/manifest.json"))
    assert legacy and all(read_manifest(path).header.changes is None for path in legacy)


def test_a_header_is_read_without_decoding_the_entries() -> None:
    manifest = snapshot("20260101T000000Z-aaaaaa", {"a": "stored-a"})
    data = encode_manifest(manifest)
    # Entries that are no image records: a whole read refuses them, the header's does not.
    broken = data.replace(b'"status": "downloaded"', b'"status": "no such status"')
    assert parse_header(broken, where="m") == manifest.header
    legacy = next((LEGACY / "snapshots").glob("*/manifest.json"))
    assert parse_header(legacy.read_bytes(), where="m") == read_manifest(legacy).header
