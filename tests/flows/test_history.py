"""Five snapshots of a gallery that changes between them (an image added and one removed, one
replaced at the same URL and one gone 404, one deleted to the placeholder, then restored):
every diff, the history commands' output, and the pages in headless Chromium."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cli.main import main
from flows.snapshot import gallery_snapshot
from gallery_snapshot.config import SnapshotConfig, SourceSpec
from gallery_snapshot.demo_gallery import DemoGallery
from gallery_snapshot.demo_gallery.content import Catalogue, DemoImage
from tests.support.browser import headless_chromium
from tests.support.manifests import read_document

KINDS = ("new", "vanished", "came_back", "changed", "gone_http", "gone_placeholder", "gone_other")


@pytest.fixture(autouse=True)
def demo_client_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMGUR_CLIENT_ID", "demo-client-id")


def gallery_at(step: int) -> Catalogue:
    """The gallery at each snapshot: one page of a few images (then the empty one)."""
    a = DemoImage("ImgA", body="deleted" if step == 4 else "image")
    b, c, d = DemoImage("ImgB"), DemoImage("ImgC"), DemoImage("ImgD")
    if step >= 3:
        c = DemoImage("ImgC", color_seed="repainted")  # other bytes, same URL
        d = DemoImage("ImgD", body="missing")  # HTTP 404
    pages = {1: [a, b, c], 2: [a, c, d], 3: [a, c, d], 4: [a, c, d], 5: [a, c, d]}
    return Catalogue([list(pages[step]), []])


def changes_by_kind(manifest: dict[str, Any], url: dict[str, str]) -> dict[str, list[str]]:
    """The manifest's changes, each URL as the image's id (``{}`` for none)."""
    changes = manifest["changes"]
    if changes is None:
        return {}
    ids = {value: key for key, value in url.items()}
    return {kind: [ids[u] for u in changes[kind]] for kind in KINDS if changes[kind]}


def command(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    main(list(argv))
    return capsys.readouterr().out


def test_five_snapshots_of_a_changing_gallery(
    gallery: DemoGallery, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    config = SnapshotConfig(
        source=SourceSpec(api_url=gallery.api_url, pages=2),
        allowed_hosts=[gallery.image_host],
        out_dir=str(out),
        recheck=True,  # else a stored image is reused without a request: no change is seen
    )
    url = {name: f"{gallery.base_url}/Img{name}.jpg" for name in "ABCD"}
    manifests = []
    for step in range(1, 6):
        gallery.state.catalogue = gallery_at(step)
        manifests.append(read_document(gallery_snapshot(config)["manifest"]))
    assert [changes_by_kind(m, url) for m in manifests] == [
        {},
        {"new": ["D"], "vanished": ["B"]},
        {"changed": ["C"], "vanished": ["D"], "gone_http": ["D"]},
        {"vanished": ["A"], "gone_placeholder": ["A"]},
        {"came_back": ["A"]},
    ]
    ids = [m["snapshot_id"] for m in manifests]
    assert [m["changes"]["previous"] for m in manifests[1:]] == ids[:-1]

    listing = command(capsys, "snapshots", "--out", str(out))
    assert listing.endswith("5 snapshots of 1 sources\n")
    assert all(snapshot_id in listing for snapshot_id in ids)
    diff = json.loads(command(capsys, "diff", "--out", str(out), "--json"))
    assert (diff["from"], diff["to"], diff["came_back"]) == (ids[3], ids[4], [url["A"]])
    diff = json.loads(command(capsys, "diff", ids[0], ids[4], "--out", str(out), "--json"))
    assert (diff["changed"], diff["vanished"]) == ([url["C"]], [url["B"]])
    found = command(capsys, "find", url["A"], "--out", str(out)).splitlines()
    statuses = ["downloaded", "downloaded", "downloaded", "gone", "downloaded"]
    assert [line.split()[:2] for line in found[:-1]] == [
        list(p) for p in zip(ids, statuses, strict=True)
    ]
    assert found[-1] == f"first seen {ids[0]}, last seen {ids[4]}"

    check_pages_in_a_browser(out, ids)


def check_pages_in_a_browser(out: Path, ids: list[str]) -> None:
    """The store's page links to every snapshot's page; each of those opens, its links to
    the store's files resolve and its thumbnails (the changes' too) render."""
    with headless_chromium() as browser:
        page = browser.new_page()
        page.goto((out / "index.html").as_uri())
        links = page.eval_on_selector_all("a", "as => as.map(a => a.href)")
        assert sorted(link.rsplit("/", 2)[-2] for link in links) == sorted(ids)
        for link in links:
            page.goto(link)
            page.wait_for_function(
                "() => [...document.images].every(i => i.complete && i.naturalWidth > 0)"
            )
            for target in page.eval_on_selector_all("a", "as => as.map(a => a.href)"):
                assert Path(target.removeprefix("file://")).is_file(), target
        page.goto(next(link for link in links if ids[3] in link))
        placeholder = page.locator("h3.gone_placeholder + .grid img")
        assert placeholder.count() == 1  # the vanished image, as the previous snapshot stored it
