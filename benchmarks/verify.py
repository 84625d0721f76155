"""How long ``gallery-snapshot verify`` takes on a large store.

    .venv/bin/python -m benchmarks.verify --images 20000

Builds a store of N distinct demo JPEGs (~40 KB, as the throughput benchmark serves) recorded
in one manifest, through the store's own commit and manifest code, then times the real
``gallery-snapshot verify`` command on it (median of --repeat runs, page cache warm after the
first: the first run's figure is printed too).
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gallery_snapshot.demo_gallery import bulk_catalogue
from gallery_snapshot.demo_gallery.content import DemoImage, image_bytes
from gallery_snapshot.manifest import build_manifest, write_manifest
from gallery_snapshot.models import ImageRecord
from gallery_snapshot.store.local import LocalStore as Store

BIN = Path(sys.executable).parent


def build_store(out: Path, count: int) -> None:
    store = Store(out)
    store.prepare()
    records = []
    catalogue = bulk_catalogue(count)
    items = [item for page in catalogue.pages for item in page if isinstance(item, DemoImage)]
    for rank, item in enumerate(items, start=1):
        data = image_bytes(item)
        staged = out / ".staging" / "bench"
        staged.write_bytes(data)
        sha = hashlib.sha256(data).hexdigest()
        path = store.commit(staged, sha256=sha, image_format="JPEG")
        url = f"http://127.0.0.1/{item.id}.jpg"
        records.append(
            ImageRecord(
                url=url,
                id=item.id,
                rank=rank,
                status="downloaded",
                path=path,
                sha256=sha,
                bytes=len(data),
                width=320,
                height=240,
                format="JPEG",
            )
        )
    manifest = build_manifest(
        snapshot_id="bench",
        started_at="",
        finished_at="",
        source={"kind": "urls", "urls_file": "bench"},
        link_count=count,
        records=records,
        skipped=[],
    )
    write_manifest(str(out), manifest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "out"
        started = time.monotonic()
        build_store(out, args.images)
        print(f"built a store of {args.images} images in {time.monotonic() - started:.1f} s")
        times = []
        for _ in range(args.repeat):
            started = time.monotonic()
            result = subprocess.run(
                [str(BIN / "gallery-snapshot"), "verify", "--out", str(out)],
                capture_output=True,
                text=True,
                check=True,
            )
            times.append(time.monotonic() - started)
        print(result.stdout.strip().splitlines()[-1])
        print(
            f"verify of {args.images} images: first {times[0]:.2f} s, "
            f"median {statistics.median(times):.2f} s (wall, whole command)"
        )


if __name__ == "__main__":
    main()
