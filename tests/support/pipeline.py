"""The snapshot pipeline without Prefect: the same plain functions the flow's tasks wrap,
called in the same order, for tests that take hundreds of snapshots (the stateful store
test) or kill one with SIGKILL. ``python -m tests.support.pipeline OUT URLS_FILE FORMATS``
runs one snapshot."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gallery_snapshot.config import DEFAULT_MAX_PIXELS, FORMATS
from gallery_snapshot.downloader import DownloadOptions, fetch_batch
from gallery_snapshot.http import Backoff
from gallery_snapshot.manifest import build_manifest, write_manifest
from gallery_snapshot.selection import select_links
from gallery_snapshot.snapshot_page import write_snapshot_page
from gallery_snapshot.sources.urls_file import list_urls_file
from gallery_snapshot.store import open_store
from gallery_snapshot.validation import validate_fetched

_counter = 0


def new_id() -> str:
    global _counter
    _counter += 1
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{_counter:04d}"


def snapshot(
    out: Path | str,
    urls_file: Path,
    *,
    formats: tuple[str, ...] = ("jpeg",),
    hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
    threads: int = 4,
    snapshot_id: str | None = None,
) -> dict[str, Any]:
    """One snapshot of the URLs in ``urls_file`` into the store ``out`` (a folder or an
    object-store URL); returns its manifest's JSON document."""
    snapshot_id = snapshot_id or new_id()
    started = datetime.now(UTC).isoformat()
    store = open_store(str(out))
    store.ready_for_snapshot()
    with store.snapshot_lock(snapshot_id):
        store.sweep_stale_staging()
        listing = list_urls_file(str(urls_file))
        selection = select_links(
            listing.links,
            mime_types=frozenset(FORMATS[name][0] for name in formats),
            allowed_hosts=hosts,
        )
        options = DownloadOptions(
            out_dir=store.name,
            snapshot_id=snapshot_id,
            allowed_hosts=frozenset(hosts),
            timeout=5,
            attempts=1,
            threads=threads,
            backoff=Backoff(base=0, cap=0, jitter=0),
        )
        urls = [link.url for link in selection.selected]
        known = None if store.index.batch_lookups else store.index.lookup(urls)
        fetched = fetch_batch(selection.selected, options, known=known)
        records = validate_fetched(
            fetched,
            out_dir=store.name,
            snapshot_id=snapshot_id,
            formats=tuple(FORMATS[name][1] for name in formats),
            max_pixels=DEFAULT_MAX_PIXELS,
        )
        records = store.settle(snapshot_id, records)
        manifest = build_manifest(
            snapshot_id=snapshot_id,
            started_at=started,
            finished_at=datetime.now(UTC).isoformat(),
            source={"kind": "urls", "urls_file": str(urls_file)},
            link_count=len(listing.links),
            records=records,
            skipped=listing.skipped + selection.skipped,
        )
        write_snapshot_page(store.name, manifest)
        write_manifest(store, manifest)
    return manifest.as_document()


if __name__ == "__main__":
    snapshot(sys.argv[1], Path(sys.argv[2]), formats=tuple(sys.argv[3].split(",")))
