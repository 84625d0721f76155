"""What a crash costs: kill -9 a snapshot at a given share of its images, run the same
command again, and count the images fetched twice.

    .venv/bin/python -m benchmarks.resume --images 20000 --kill-at 0.9 --workers 64

The demo gallery runs in this process (so its request log can be read), the Prefect server
and the snapshots in their own. An image counts as fetched twice when the gallery answered
it twice; the wanted bound is the concurrency (only the downloads in flight at the kill).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmarks.services import BIN, PER_PAGE, Services
from gallery_snapshot.demo_gallery import DemoGallery, bulk_catalogue


def snapshot_argv(gallery: DemoGallery, out: Path, args: argparse.Namespace) -> list[str]:
    """``gallery-snapshot run`` of every page of ``gallery`` into ``out``."""
    return [
        str(BIN / "gallery-snapshot"),
        "run",
        "--api-url",
        gallery.api_url,
        "--allow-host",
        gallery.image_host,
        "--out",
        str(out),
        "--pages",
        str(-(-args.images // PER_PAGE)),
        "--workers",
        str(args.workers),
    ]


def answered(gallery: DemoGallery) -> Counter[str]:
    """Image paths the gallery answered with 200, and how often."""
    with gallery.state.lock:
        log = list(gallery.state.requests)
    return Counter(p for p, outcome in log if outcome == 200 and p.endswith(".jpg"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--kill-at", type=float, default=0.9, help="share of images answered")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        services = Services(work, images=0, latency=0, gallery=False)
        catalogue = bulk_catalogue(args.images, per_page=PER_PAGE)
        try:
            with DemoGallery(catalogue, latency=args.latency) as gallery:
                argv = snapshot_argv(gallery, work / "out", args)
                env = {**services.env, "IMGUR_CLIENT_ID": gallery.client_id}

                victim = subprocess.Popen(
                    argv,
                    env=env,
                    start_new_session=True,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                while sum(answered(gallery).values()) < args.kill_at * args.images:
                    if victim.poll() is not None:
                        raise SystemExit("the snapshot ended before it could be killed")
                    time.sleep(0.05)
                os.killpg(victim.pid, signal.SIGKILL)
                victim.wait()
                before = sum(answered(gallery).values())
                started = time.monotonic()
                rerun = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
                seconds = time.monotonic() - started
                counts = answered(gallery)
        finally:
            services.close()
    twice = sum(1 for n in counts.values() if n > 1)
    print(rerun.stdout.strip().splitlines()[0] if rerun.returncode == 0 else rerun.stderr)
    print(
        f"killed at {before}/{args.images} images answered; the rerun took {seconds:.1f} s; "
        f"images fetched twice: {twice} (concurrency {args.workers}); "
        f"images never fetched: {args.images - len(counts)}"
    )


if __name__ == "__main__":
    main()
