"""Fault injection through the whole flow: the demo gallery misbehaves per path and per
attempt, and the manifest, the store and the gallery's request log tell what the client did."""

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from flows.snapshot import gallery_snapshot
from gallery_snapshot.config import SnapshotConfig, SourceSpec
from gallery_snapshot.demo_gallery import DemoGallery
from gallery_snapshot.errors import RateLimitExhausted
from tests.support.manifests import read_document

PAGE0 = "/3/gallery/hot/viral/day/0"


@pytest.fixture(autouse=True)
def demo_client_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMGUR_CLIENT_ID", "demo-client-id")


def snapshot(gallery: DemoGallery, out: Path, **options: Any) -> dict[str, Any]:
    source = SourceSpec(api_url=gallery.api_url, pages=options.pop("pages", 3))
    config = SnapshotConfig(
        source=source, allowed_hosts=[gallery.image_host], out_dir=str(out), **options
    )
    summary = gallery_snapshot(config)
    return read_document(summary["manifest"])


def test_every_fault_class_in_one_snapshot(gallery: DemoGallery, out_dir: Path) -> None:
    gallery.state.faults.update(
        {
            PAGE0: ["503", "429+retry-after=0", "over-capacity"],
            "/Jpg001.jpg": ["500", "reset"],
            "/Jpg002.jpg": ["short-body"],
            "/Jpg003.jpg": ["429"],
            "/Jpg004.jpg": ["slow=3"],
            "/Jpg005.jpg": ["redirect=http://169.254.169.254/latest/meta-data.jpg"],
            "/Jpg006.jpg": ["chunked=400000"],
            "/Jpg007.jpg": ["html"],
            "/Jpg008.jpg": ["410"],
        }
    )
    manifest = snapshot(gallery, out_dir, timeout=1.0, max_bytes=300_000, attempts=3)
    status = {image["id"]: (image["status"], image["error"]) for image in manifest["images"]}

    # The API's transient errors were retried, then the listing went on.
    assert gallery.state.requests_for(PAGE0) == ["503", "429+retry-after=0", "over-capacity", 200]
    # Downloads retried per image, each only as often as it failed.
    for image_id in ("Jpg001", "Jpg002", "Jpg003", "Jpg004"):
        assert status[image_id] == ("downloaded", None)
    assert gallery.state.requests_for("/Jpg001.jpg") == ["500", "reset", 200]
    assert gallery.state.requests_for("/Jpg002.jpg") == ["short-body", 200]
    assert gallery.state.requests_for("/Jpg003.jpg") == ["429", 200]
    # Read timeout after 1 s, then a retry (the abandoned slow answer may be logged later).
    assert gallery.state.requests_for("/Jpg004.jpg")[:2] == ["slow=3", 200]
    # Refused without retrying: a redirect off the allowed hosts, a body over max-bytes.
    assert status["Jpg005"] == ("failed", "redirect to host 169.254.169.254 is not allowed")
    assert gallery.state.requests_for("/Jpg005.jpg") == [
        "redirect=http://169.254.169.254/latest/meta-data.jpg"
    ]
    assert status["Jpg006"] == ("failed", "larger than max-bytes (over 300000)")
    # Not an image: quarantined, never stored.
    assert status["Jpg007"][0] == "invalid"
    assert "quarantined as quarantine/" in status["Jpg007"][1]
    assert status["Jpg008"] == ("gone", "HTTP 410")
    # The store holds only whole, decodable images, and nothing is left in staging.
    stored = [p for p in (out_dir / "images").rglob("*") if p.is_file()]
    assert len(stored) == manifest["counts"]["downloaded"] == 14 - 4
    for path in stored:
        with Image.open(path) as image:
            image.load()
    assert list((out_dir / ".staging").iterdir()) == []


def test_malformed_api_items_are_skipped_and_the_rest_kept(
    gallery: DemoGallery, out_dir: Path
) -> None:
    good = {"id": "Jpg001", "type": "image/jpeg", "link": f"{gallery.base_url}/Jpg001.jpg"}
    page = [
        {"id": "NoLink", "type": "image/jpeg"},
        {"id": "BadAlbum", "is_album": True, "images": "not a list"},
        "not an object",
        {"id": ["wrong"], "link": "x"},
        good,
    ]
    gallery.state.faults[PAGE0] = [
        "json=" + json.dumps({"data": page, "success": True, "status": 200})
    ]
    manifest = snapshot(gallery, out_dir, pages=1)
    assert [image["id"] for image in manifest["images"]] == ["Jpg001"]
    reasons = [item["reason"] for item in manifest["skipped"]]
    assert reasons[0] == "malformed image item: link: Field required"
    assert reasons[1].startswith("malformed album:")
    assert reasons[2] == "listing item is a str, not an object"
    assert reasons[3].startswith("malformed image item: id:")


def test_spent_credits_stop_the_snapshot_politely(out_dir: Path) -> None:
    with DemoGallery(client_limit=2) as gallery:
        config = SnapshotConfig(
            source=SourceSpec(api_url=gallery.api_url, pages=5),
            allowed_hosts=[gallery.image_host],
            out_dir=str(out_dir),
        )
        state = gallery_snapshot(config, return_state=True)
        api_requests = [path for path, _ in gallery.state.requests if path.startswith("/3/")]
    error = state.result(raise_on_failure=False)
    assert isinstance(error, RateLimitExhausted) and "credits are spent" in str(error)
    # Two requests spent the two credits; no request after that, and no task retry.
    assert api_requests == [PAGE0, "/3/gallery/hot/viral/day/1"]
