"""Part 3 of ``benchmarks.profile``: the project's download and validation functions called
without Prefect at ``--workers`` concurrency, in the flow's arrangement and in the ones the
issue proposed (validation overlapping downloads; one pool, no batches; urllib3 and one sync
per batch). The last arrangements are sketches in this file, not the package's code."""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import ctypes
import functools
import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import urllib3

from benchmarks.services import PER_PAGE, process_cpu, start_gallery
from gallery_snapshot.batching import BatchPlan, plan_batches
from gallery_snapshot.config import SnapshotConfig, SourceSpec
from gallery_snapshot.demo_gallery import DEMO_CLIENT_ID
from gallery_snapshot.downloader import DownloadOptions, fetch_one
from gallery_snapshot.http import image_client, make_session
from gallery_snapshot.models import FetchResult, Link
from gallery_snapshot.pipeline import download_and_validate, plan_downloads, step_options
from gallery_snapshot.sources import list_links
from gallery_snapshot.store.local import LocalStore as Store
from gallery_snapshot.validation import inspect_image, validate_fetched

FORMATS, MAX_PIXELS = ("JPEG",), 10**8


@dataclass
class Arrangements:
    """The ways of downloading and validating ``links`` with ``workers`` threads; each takes
    the store folder to write into."""

    links: list[Link]
    workers: int
    plan: BatchPlan
    http: urllib3.PoolManager
    session: requests.Session

    def options(self, out: Path, threads: int) -> DownloadOptions:
        return DownloadOptions(
            out_dir=str(out),
            snapshot_id="direct",
            allowed_hosts=frozenset({"127.0.0.1"}),
            threads=threads,
        )

    def validate(self, out: Path, batch: list[FetchResult]) -> None:
        records = validate_fetched(
            batch, out_dir=str(out), snapshot_id="direct", formats=FORMATS, max_pixels=MAX_PIXELS
        )
        assert all(r.status == "downloaded" for r in records), records[:3]

    def flow_order(self, out: Path) -> None:
        """The flow's arrangement, through the pipeline's own steps: the plan's shrinking
        batches on the process's shared download threads, ``DOWNLOADS_IN_FLIGHT`` at a time,
        each validated as it ends."""
        config = SnapshotConfig(
            allowed_hosts=["127.0.0.1"], workers=self.workers, max_pixels=MAX_PIXELS
        )
        planned = plan_downloads(self.links, config)
        options = step_options(
            config, out_dir=str(out), snapshot_id="direct", threads=planned.plan.threads
        )
        records = download_and_validate(planned.batches, options)
        assert all(r.status == "downloaded" for r in records), records[:3]

    def one_pool(self, out: Path) -> None:
        """No batches: one pool of ``workers`` threads over one client; each thread
        validates and stores its own image right after downloading it."""
        store = Store(out)
        options = self.options(out, self.workers)
        staging = store.staging_dir("direct")
        staging.mkdir(parents=True)
        client = image_client()

        def one(link: Link) -> None:
            self.validate(out, [fetch_one(client, link, store, staging, options)])

        with cf.ThreadPoolExecutor(self.workers) as pool:
            list(pool.map(one, self.links))

    def lean_one(self, out: Path, staging: Path, link: Link, *, client: str, fsync: bool) -> None:
        """One image: GET, stream to staging with sha256, (fsync,) validate, rename."""
        target = staging / f"{link.rank}.jpg"
        digest = hashlib.sha256()
        with open(target, "wb") as handle:
            if client == "urllib3":
                response = self.http.request(
                    "GET",
                    link.url,
                    preload_content=False,
                    redirect=False,
                    timeout=urllib3.Timeout(30, 30),
                )
                assert response.status == 200
                chunks: Iterable[bytes] = response.stream(64 * 1024)
            else:
                got = self.session.get(link.url, stream=True, allow_redirects=False, timeout=30)
                assert got.status_code == 200
                chunks = got.iter_content(64 * 1024)
            for chunk in chunks:
                digest.update(chunk)
                handle.write(chunk)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        if client == "urllib3":
            response.release_conn()
        else:
            got.close()
        inspect_image(target, formats=FORMATS, max_pixels=MAX_PIXELS)
        os.replace(target, out / "images" / f"{digest.hexdigest()}.jpg")

    def lean(self, out: Path, *, client: str, fsync: bool) -> None:
        """One pool; one syncfs at the end unless every image was fsynced."""
        staging = out / ".staging"
        staging.mkdir(parents=True)
        (out / "images").mkdir()
        with cf.ThreadPoolExecutor(self.workers) as pool:
            list(
                pool.map(
                    lambda link: self.lean_one(out, staging, link, client=client, fsync=fsync),
                    self.links,
                )
            )
        if not fsync:
            fd = os.open(out, os.O_RDONLY)
            try:
                ctypes.CDLL(None, use_errno=True).syncfs(fd)
            finally:
                os.close(fd)

    def named(self) -> list[tuple[str, Callable[[Path], None]]]:
        return [
            (f"flow's arrangement: {len(self.plan.sizes)} shrinking batches", self.flow_order),
            (f"one pool of {self.workers} threads, validate in the download thread", self.one_pool),
            *(
                (
                    f"one pool of {self.workers}, {client}, "
                    + ("fsync per image" if fsync else "one syncfs at the end"),
                    functools.partial(self.lean, client=client, fsync=fsync),
                )
                for client in ("requests", "urllib3")
                for fsync in (True, False)
            ),
        ]


def direct(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    """Each arrangement ``args.repeat`` times on the same links; the medians of each."""
    gallery, api = start_gallery(args.images, latency=args.latency)
    results: list[dict[str, Any]] = []
    try:
        links = list_links(
            SourceSpec(api_url=api, pages=math.ceil(args.images / PER_PAGE)),
            client_id=DEMO_CLIENT_ID,
        ).links[: args.images]
        workers = args.workers
        arrangements = Arrangements(
            links=links,
            workers=workers,
            plan=plan_batches(
                len(links), runner="threads", workers=workers, cpus=os.cpu_count() or 1
            ),
            http=urllib3.PoolManager(maxsize=workers, retries=False),
            session=make_session(pool_size=workers),
        )
        for name, arrangement in arrangements.named():
            if not args.only or args.only in name:
                entry = timed(name, arrangement, args, work / f"direct-{len(results)}", gallery.pid)
                print(json.dumps(entry), flush=True)
                results.append(entry)
    finally:
        gallery.terminate()
        gallery.wait(timeout=30)
    return results


def timed(
    name: str, arrangement: Callable[[Path], None], args: argparse.Namespace, out: Path, pid: int
) -> dict[str, Any]:
    """``arrangement`` run ``args.repeat`` times into fresh folders (``out-0``, ``out-1``...):
    the median of each figure, per image of ``args.images``."""
    walls, cpus, gallery_cpus = [], [], []
    for attempt in range(args.repeat):
        folder = out.with_name(f"{out.name}-{attempt}")
        gallery_before = process_cpu(pid)
        cpu_before = time.process_time()
        started = time.perf_counter()
        arrangement(folder)
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu_before)
        gallery_cpus.append(process_cpu(pid) - gallery_before)
        shutil.rmtree(folder, ignore_errors=True)
    wall, n = sorted(walls)[len(walls) // 2], args.images
    return {
        "what": name,
        "concurrency": args.workers,
        "phase_s": round(wall, 2),
        "images_per_s": round(n / wall, 1),
        "efficiency": round(n * args.latency / args.workers / wall, 2),
        "cpu_ms_per_image": round(1000 * sorted(cpus)[len(cpus) // 2] / n, 3),
        "gallery_cpu_ms_per_image": round(
            1000 * sorted(gallery_cpus)[len(gallery_cpus) // 2] / n, 3
        ),
    }
