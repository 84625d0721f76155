"""One snapshot without Prefect, through the pipeline's own steps (``run_snapshot``), for tests
that take hundreds of snapshots (the stateful store test) or kill one with SIGKILL.
``python -m tests.support.pipeline OUT URLS_FILE FORMATS`` runs one snapshot."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gallery_snapshot.config import SnapshotConfig, SourceSpec
from gallery_snapshot.http import Backoff
from gallery_snapshot.pipeline import run_snapshot

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
    object-store URL), one attempt per image, no backoff; returns the manifest."""
    config = SnapshotConfig(
        source=SourceSpec(kind="urls", urls_file=str(urls_file)),
        formats=list(formats),  # type: ignore[arg-type]  # checked by the model
        allowed_hosts=list(hosts),
        out_dir=str(out),
        workers=threads,
        timeout=5,
        attempts=1,
    )
    recorded = run_snapshot(
        config, snapshot_id=snapshot_id or new_id(), backoff=Backoff(base=0, cap=0, jitter=0)
    )
    return recorded.manifest.as_document()


if __name__ == "__main__":
    snapshot(sys.argv[1], Path(sys.argv[2]), formats=tuple(sys.argv[3].split(",")))
