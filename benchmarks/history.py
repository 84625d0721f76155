"""How long ``snapshots``, ``diff`` and ``find`` take on a store of many snapshots.

    .venv/bin/python -m benchmarks.history --snapshots 1000 --images 200 [--s3]

Writes a store of N snapshots of one gallery of M images (each snapshot replaces 1 % of the
images with new ones, and every 10th changes one image's bytes at the same URL), each
manifest with its changes block, through the project's own manifest code; then times each
command without the store's ``history.json`` (a store of old manifests), then with it (as
the last snapshot recorded leaves it), in-process (the median of --repeat runs, the page
cache warm) and as the whole ``gallery-snapshot`` command (interpreter start and imports
included). In a folder, in an object store (obstore's ``file://`` backend) and, with --s3,
on moto's S3 server.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from gallery_snapshot.changes import with_changes
from gallery_snapshot.history import (
    changes_between,
    choose_pair,
    find_image,
    remember_snapshots,
    snapshots,
    timelines,
)
from gallery_snapshot.manifest import build_manifest, write_manifest
from gallery_snapshot.models import ImageRecord, Manifest
from gallery_snapshot.store import open_store

BIN = Path(sys.executable).parent


def gallery(snapshot: int, images: int) -> list[tuple[str, str]]:
    """(URL, sha256) of each image the gallery shows at snapshot ``snapshot``."""
    churn = max(1, images // 100)
    first = snapshot * churn
    shown = []
    for number in range(first, first + images):
        edit = snapshot // 10 if number == first + images // 2 else 0
        shown.append((f"http://gallery.example/{number}.jpg", f"{number:058x}{edit:06x}"))
    return shown


def manifest_at(snapshot: int, images: int) -> Manifest:
    records = [
        ImageRecord(
            url=url,
            id=url.rsplit("/", 1)[-1][:-4],
            rank=rank,
            status="downloaded" if rank % 50 else "reused",
            path=f"images/{sha[:2]}/{sha[2:4]}/{sha}.jpg",
            sha256=sha,
            bytes=40_000,
            width=320,
            height=240,
            format="JPEG",
        )
        for rank, (url, sha) in enumerate(gallery(snapshot, images), 1)
    ]
    moment = f"2026-01-01T00:00:00+00:00 +{snapshot}h"
    return build_manifest(
        snapshot_id=f"2026{snapshot:08d}-bench0",
        started_at=moment,
        finished_at=moment,
        source={"kind": "urls", "urls_file": "bench.txt"},
        link_count=images,
        records=records,
        skipped=[],
    )


def build(out: str, count: int, images: int) -> Manifest:
    """The store's manifests, as recorded; the last one."""
    open_store(out).ready_for_snapshot()
    previous = None
    for snapshot in range(count):
        manifest = with_changes(manifest_at(snapshot, images), previous)
        write_manifest(out, manifest)
        previous = manifest
    assert previous is not None
    return previous


def median_seconds(call: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def command_seconds(argv: list[str], env: dict[str, str], repeat: int) -> float:
    def run() -> None:
        subprocess.run(
            [str(BIN / "gallery-snapshot"), *argv], env=env, capture_output=True, check=True
        )

    return median_seconds(run, repeat)


def measure(label: str, out: str, count: int, images: int, repeat: int) -> None:
    started = time.perf_counter()
    last = build(out, count, images)
    print(
        f"{label}: wrote {count} snapshots x {images} images in "
        f"{time.perf_counter() - started:.1f} s"
    )
    middle = gallery(count // 2, images)[images // 2][0]

    def diff() -> object:
        older, newer = choose_pair(snapshots(out), [], None)
        return changes_between(out, older, newer)

    calls: dict[str, Callable[[], object]] = {
        "snapshots": lambda: timelines(snapshots(out)),
        "diff": diff,
        "find URL": lambda: find_image(out, middle),
    }
    argvs = {
        "snapshots": ["snapshots", "--out", out],
        "diff": ["diff", "--out", out],
        "find URL": ["find", middle, "--out", out],
    }
    env = dict(os.environ)
    for cached in (False, True):
        if cached:  # as the last snapshot recorded leaves it
            started = time.perf_counter()
            remember_snapshots(out, last.header)
            print(f"  history.json written in {time.perf_counter() - started:.3f} s")
        for name, call in calls.items():
            inside = median_seconds(call, repeat)
            whole = command_seconds(argvs[name], env, repeat)
            state = "with history.json" if cached else "manifests only   "
            print(f"  {name:<10} {state} {inside:6.3f} s in-process, {whole:6.3f} s whole command")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--snapshots", type=int, default=1000)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--s3", action="store_true", help="also on moto's S3 server")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        shape = (args.snapshots, args.images, args.repeat)
        measure("folder", str(work / "out"), *shape)
        measure("object store (file://)", f"file://{work}/bucket", *shape)
        if args.s3:
            from tests.support.s3_server import S3Server

            with S3Server(work / "s3.log") as s3:
                os.environ.update(s3.env())
                s3.create_bucket("bench")
                measure("S3 (moto)", "s3://bench/history", *shape)


if __name__ == "__main__":
    main()
