"""A hostile listing: a demo gallery page whose ids, types, links and error texts are full of
markdown, HTML, URLs and control characters, and one CLI run of it against a Prefect server."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from gallery_snapshot.demo_gallery import DemoGallery
from tests.support.prefect_server import PrefectServer
from tests.support.snapshot_runs import run_args

PAGE0 = "/3/gallery/hot/viral/day/0"
ALBUM_IMAGES = "/3/album/AlbLazy/images"
INJECTIONS = (
    "x](javascript:alert(1)) [y ![p](http://tracker.example/p.png) <http://evil.example/a> "
    '<img src="http://tracker.example/i.png"> www.evil.example mail@evil.example `|`'
)
FORGED = "2026-01-01 00:00:00 CRITICAL forged line"
HOSTILE_ERROR = f"bad gateway\n{FORGED}\x1b[31m https://evil.example/ {INJECTIONS}\u202e"


def hostile_page(base: str, run: int) -> list[dict[str, Any]]:
    """A listing page: stored images with hostile ids (other ids in each ``run``), one at a
    hostile link of each ``run`` (so the report's changes list both: new, and vanished), a
    hostile type, hostile links, a lazy album."""
    image = {"type": "image/jpeg", "title": INJECTIONS}
    return [
        {
            **image,
            "id": f"{INJECTIONS} \n{FORGED} {run}",
            # No space: a URL holding one is skipped as ambiguous.
            "link": f"{base}/Jpg001.jpg?{INJECTIONS.replace(' ', '')}{run}",
        },
        {**image, "id": f"\x1b[2J\u2028{INJECTIONS} {run}", "link": f"{base}/Jpg002.jpg"},
        {**image, "id": "redirected", "link": f"{base}/Jpg003.jpg"},
        {**image, "id": "missing", "link": f"{base}/Missing.jpg?{INJECTIONS}"},
        {**image, "id": "typed", "type": f"image/png {INJECTIONS}", "link": f"{base}/Jpg004.jpg"},
        {**image, "id": "script", "link": "javascript:alert(1)"},
        {**image, "id": "foreign", "link": f"http://evil.example/{INJECTIONS}.jpg"},
        {"id": "AlbLazy", "is_album": True, "images_count": 3, "title": INJECTIONS},
    ]


def hostile_snapshot(server: PrefectServer, gallery: DemoGallery, out: Path, run: int) -> str:
    """One CLI run of the hostile listing; its flow run's id."""
    page = hostile_page(gallery.base_url, run)
    gallery.state.faults.update(
        {
            PAGE0: ["json=" + json.dumps({"data": page, "success": True, "status": 200})],
            ALBUM_IMAGES: [f"error=500:{HOSTILE_ERROR}"] * 4,
            "/Jpg003.jpg": [f"redirect=http://127.0.0.2/{INJECTIONS}"],
        }
    )
    result = server.snapshot(
        *run_args(gallery, out, "--pages", "1"), env={"IMGUR_CLIENT_ID": gallery.client_id}
    )
    assert result.returncode == 0, result.stderr
    [run_id] = re.findall(r"^run page: .*/runs/flow-run/([0-9a-f-]{36})$", result.stdout, re.M)
    return str(run_id)
