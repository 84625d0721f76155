"""One bad URL fails only itself, end to end: the CLI over a real Prefect server snapshots a
``--urls-file`` of generated lines, and a listing of generated links (albums and redirect
``Location``s included), exits 0 with a manifest that accounts for every line and link, and
never contacts the trap host 127.0.0.2. A few runs of many lines each keep this fast."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from gallery_snapshot.demo_gallery import DemoGallery
from tests.support.hostile_server import TRAP_HOST, HostileServer, serving
from tests.support.prefect_server import PrefectServer
from tests.support.snapshot_runs import manifests
from tests.support.urls import awkward_urls, unaccounted_lines

STATUSES = {"downloaded", "reused", "invalid", "gone", "failed"}
# Each example is a whole CLI run: few of them, no shrinking (every step would be a run).
E2E = settings(
    max_examples=3,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
REDIRECTED = [f"/Jpg{n:03d}.jpg" for n in range(4, 9)]  # answer with a generated Location


@pytest.fixture(scope="module")
def trap() -> Iterator[HostileServer]:
    with serving(HostileServer(TRAP_HOST, trap=True)) as server:
        yield server


@pytest.fixture(scope="module")
def gallery() -> Iterator[DemoGallery]:
    with DemoGallery() as served:
        yield served


def hosts(gallery: DemoGallery, trap: HostileServer) -> tuple[str, ...]:
    return (gallery.base_url.removeprefix("http://"), f"{TRAP_HOST}:{trap.port}")


def redirect_to(gallery: DemoGallery, locations: list[str]) -> None:
    """The images of ``REDIRECTED`` answer once each with a redirect to ``locations`` (sent
    as their UTF-8 bytes, as a server may)."""
    gallery.state.faults.clear()
    for path, location in zip(REDIRECTED, locations, strict=True):
        raw = location.encode("utf-8", "backslashreplace").decode("latin-1")
        gallery.state.faults[path] = [f"redirect={raw.replace(chr(13), '').replace(chr(10), '')}"]


def snapshot(server: PrefectServer, out: Path, *args: str, **env: str) -> dict[str, Any]:
    """Run ``gallery-snapshot run ARGS``; its manifest, once it exited 0."""
    result = server.snapshot("run", *args, "--out", str(out), env=env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    [manifest] = manifests(out)
    assert {image["status"] for image in manifest["images"]} <= STATUSES
    assert all(item["reason"] for item in manifest["skipped"])
    return manifest


def test_unclosed_bracket_and_full_width_colon_lines_fail_only_themselves(
    prefect_server: PrefectServer, gallery: DemoGallery, tmp_path: Path
) -> None:
    urls = tmp_path / "urls.txt"
    bad = ["http://[::1/x.jpg", "http://127.0.0.1\uff1a8080/x.jpg"]
    urls.write_text("\n".join([*bad, f"{gallery.base_url}/Jpg001.jpg"]) + "\n", "utf-8")
    manifest = snapshot(
        prefect_server, tmp_path / "out", "--urls-file", str(urls), "--allow-host", "127.0.0.1"
    )
    assert [image["status"] for image in manifest["images"]] == ["downloaded"]
    assert [item["reason"][:21] for item in manifest["skipped"]] == [
        "line 1: malformed URL",
        "line 2: malformed URL",
    ]


def test_a_urls_file_of_generated_lines(
    prefect_server: PrefectServer, gallery: DemoGallery, trap: HostileServer, tmp_path: Path
) -> None:
    line = awkward_urls(hosts(gallery, trap)).map(lambda text: text.replace("\n", ""))
    redirected = [f"{gallery.base_url}{path}" for path in REDIRECTED]

    @E2E
    @given(
        st.lists(line, min_size=40, max_size=60),
        st.lists(awkward_urls(hosts(gallery, trap)), min_size=5, max_size=5),
    )
    def check(lines: list[str], locations: list[str]) -> None:
        run = tmp_path / f"run-{len(list(tmp_path.iterdir()))}"
        run.mkdir()
        redirect_to(gallery, locations)
        text = "\n".join([f"{gallery.base_url}/Jpg001.jpg", *redirected, *lines]) + "\n"
        (run / "urls.txt").write_text(text, "utf-8")
        manifest = snapshot(
            prefect_server,
            run / "out",
            "--urls-file",
            str(run / "urls.txt"),
            "--allow-host",
            "127.0.0.1",
        )
        # Links by their URL; lines skipped on reading by their number ("line N: ...").
        entries = manifest["images"] + manifest["skipped"]
        numbered = [entry for entry in entries if entry.get("reason", "").startswith("line ")]
        urls = [entry["url"] for entry in entries if entry not in numbered]
        assert unaccounted_lines(text, urls, [entry["reason"] for entry in numbered]) == []
        by_url = {image["url"]: image["status"] for image in manifest["images"]}
        assert by_url[f"{gallery.base_url}/Jpg001.jpg"] == "downloaded"
        assert all(url in by_url for url in redirected)
        assert trap.connections == 0

    check()


def image_items(links: list[str], prefix: str) -> list[dict[str, Any]]:
    return [
        {"id": f"{prefix}{n}", "link": link, "type": "image/jpeg"} for n, link in enumerate(links)
    ]


def test_a_listing_of_generated_links(
    prefect_server: PrefectServer, gallery: DemoGallery, trap: HostileServer, tmp_path: Path
) -> None:
    link = awkward_urls(hosts(gallery, trap), surrogates=True)
    redirected = [f"{gallery.base_url}{path}" for path in REDIRECTED]

    @E2E
    @given(
        st.lists(link, min_size=30, max_size=40),
        st.lists(link, min_size=10, max_size=10),
        st.lists(awkward_urls(hosts(gallery, trap)), min_size=5, max_size=5),
    )
    def check(links: list[str], album_links: list[str], locations: list[str]) -> None:
        run = tmp_path / f"run-{len(list(tmp_path.iterdir()))}"
        run.mkdir()
        redirect_to(gallery, locations)
        items = image_items([f"{gallery.base_url}/Jpg001.jpg", *redirected, *links], "i")
        embedded = {"id": "AlbEmbd", "is_album": True, "images": image_items(album_links, "e")}
        lazy = {"id": "AlbLazy", "is_album": True}
        page = {"data": [*items, embedded, lazy], "success": True, "status": 200}
        lazy_images = {"data": image_items(album_links, "l"), "success": True, "status": 200}
        # JSON carries lone surrogates as \ud800 escapes.
        gallery.state.faults["/3/gallery/hot/viral/day/0"] = [f"json={json.dumps(page)}"]
        gallery.state.faults["/3/album/AlbLazy/images"] = [f"json={json.dumps(lazy_images)}"]
        manifest = snapshot(
            prefect_server,
            run / "out",
            "--api-url",
            gallery.api_url,
            "--allow-host",
            gallery.image_host,
            "--pages",
            "1",
            IMGUR_CLIENT_ID=gallery.client_id,
        )
        accounted = manifest["images"] + manifest["skipped"]
        assert len(accounted) == len(items) + 2 * len(album_links)
        by_id = {image["id"]: image["status"] for image in manifest["images"]}
        assert by_id["i0"] == "downloaded"
        assert all(f"i{n}" in by_id for n in range(1, len(redirected) + 1))
        assert trap.connections == 0

    check()
