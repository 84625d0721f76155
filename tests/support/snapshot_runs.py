"""A ``gallery-snapshot run`` of the demo gallery as the end-to-end tests start it, and what it
leaves: the manifests of a folder, the image requests the gallery answered."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from gallery_snapshot.demo_gallery import DemoGallery
from tests.support.manifests import read_document


def manifests(out: Path) -> list[dict[str, Any]]:
    """The manifests of every snapshot in ``out``, oldest first."""
    return [read_document(path) for path in sorted((out / "snapshots").glob("*/manifest.json"))]


def run_args(gallery: DemoGallery, out: Path | str, *extra: str) -> list[str]:
    """``gallery-snapshot run`` arguments that snapshot ``gallery`` as if it were Imgur, into
    the folder or object-store URL ``out``."""
    return [
        "run",
        "--api-url",
        gallery.api_url,
        "--allow-host",
        gallery.image_host,
        "--out",
        str(out),
        *extra,
    ]


def image_requests(gallery: DemoGallery) -> Counter[str]:
    """Image paths the gallery answered with 200, and how often (API calls left out)."""
    with gallery.state.lock:
        return Counter(
            path
            for path, outcome in gallery.state.requests
            if outcome == 200 and not path.startswith("/3/")
        )
