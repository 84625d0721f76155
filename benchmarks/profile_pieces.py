"""Part 2 of ``benchmarks.profile``: each piece of the image hot path timed alone, one thread,
on the same images served without latency: CPU (``time.process_time``) and wall per image,
with the gallery's own CPU per request."""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import io
import json
import math
import os
import time
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from benchmarks.services import PER_PAGE, process_cpu, start_gallery
from gallery_snapshot.config import SourceSpec
from gallery_snapshot.demo_gallery import DEMO_CLIENT_ID
from gallery_snapshot.downloader import DownloadOptions
from gallery_snapshot.http import ImageClient
from gallery_snapshot.models import Link
from gallery_snapshot.sources import list_links


def system_busy() -> float:
    """Busy CPU seconds of the whole machine (every process and kernel thread)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def per_item(
    name: str,
    items: Iterable[Any],
    work: Callable[[Any], None],
    *,
    count: int,
    gallery_pid: int | None = None,
) -> dict[str, Any]:
    gallery_before = process_cpu(gallery_pid) if gallery_pid else 0.0
    busy_before = system_busy()
    cpu_before = time.process_time()
    started = time.perf_counter()
    for item in items:
        work(item)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    busy = system_busy() - busy_before
    entry = {
        "what": name,
        "cpu_ms": round(1000 * cpu / count, 3),
        "wall_ms": round(1000 * wall / count, 3),
        "machine_cpu_ms": round(1000 * busy / count, 3),
    }
    if gallery_pid:
        entry["gallery_cpu_ms"] = round(
            1000 * (process_cpu(gallery_pid) - gallery_before) / count, 3
        )
    print(json.dumps(entry), flush=True)
    return entry


def micro(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    from PIL import Image

    from gallery_snapshot.http import image_client

    gallery, api = start_gallery(args.images, latency=0.0)
    try:
        listing = list_links(
            SourceSpec(api_url=api, pages=math.ceil(args.images / PER_PAGE)),
            client_id=DEMO_CLIENT_ID,
        )
        links = listing.links[: args.images]
        bodies = [urllib.request.urlopen(link.url).read() for link in links]  # loopback
        with Image.open(io.BytesIO(bodies[0])) as first:
            size = first.size
        n = len(links)
        print(f"{n} images, {sum(map(len, bodies)) / n / 1024:.1f} KB each, {size}", flush=True)
        client = image_client()
        results = http_clients(client, links, work, gallery.pid)
        results.append(
            per_item("sha256 of the body", bodies, lambda b: hashlib.sha256(b).hexdigest(), count=n)
        )
        folder = work / "files"
        folder.mkdir()
        results += file_writes(bodies, folder)
        results += decoding_and_storing(work, [folder / f"{i}-True.jpg" for i in range(n)])
        results.append(whole_download_step(client, links, work, gallery.pid))
    finally:
        gallery.terminate()
        gallery.wait(timeout=30)
    return results


def http_clients(
    client: ImageClient, links: list[Link], work: Path, pid: int
) -> list[dict[str, Any]]:
    """Each HTTP client fetching and draining every body, nothing else."""
    import urllib3

    from gallery_snapshot.downloader import _check_status, _open_stream
    from gallery_snapshot.http import Deadline, make_session

    options = DownloadOptions(
        out_dir=str(work / "store"), snapshot_id="profile", allowed_hosts=frozenset({"127.0.0.1"})
    )
    urls, n = [link.url for link in links], len(links)

    def with_project(link: Link) -> None:
        with _open_stream(client, link, options, Deadline(options.deadline)) as response:
            _check_status(response)
            for _ in response.stream(64 * 1024):
                pass

    session = make_session(pool_size=1)

    def with_requests(url: str) -> None:
        with session.get(url, stream=True, allow_redirects=False, timeout=30) as response:
            for _ in response.iter_content(64 * 1024):
                pass

    pool = urllib3.PoolManager(maxsize=1, retries=False)

    def with_urllib3(url: str) -> None:
        response = pool.request(
            "GET", url, preload_content=False, redirect=False, timeout=urllib3.Timeout(30, 30)
        )
        for _ in response.stream(64 * 1024):
            pass
        response.release_conn()

    def with_urlopen(url: str) -> None:
        with urllib.request.urlopen(url, timeout=30) as response:
            response.read()

    clients: list[tuple[str, list[Any], Callable[[Any], None]]] = [
        ("GET: project (_open_stream over urllib3 + stream)", links, with_project),
        ("GET: requests Session, streamed", urls, with_requests),
        ("GET: urllib3 PoolManager, streamed", urls, with_urllib3),
        ("GET: urllib.request.urlopen (img2dataset; new connection each)", urls, with_urlopen),
    ]
    results = [per_item(name, items, get, count=n, gallery_pid=pid) for name, items, get in clients]
    session.close()
    return results


def file_writes(bodies: list[bytes], folder: Path) -> list[dict[str, Any]]:
    """Writing each body to a file: alone, with an fsync each, with one syncfs per batch."""
    numbered, n = list(enumerate(bodies)), len(bodies)

    def write(item: tuple[int, bytes], *, sync: bool) -> None:
        index, body = item
        with open(folder / f"{index}-{sync}.jpg", "wb") as handle:
            handle.write(body)
            if sync:
                handle.flush()
                os.fsync(handle.fileno())

    libc = ctypes.CDLL(None, use_errno=True)

    def write_then_one_sync(items: list[tuple[int, bytes]]) -> None:
        for index, body in items:
            with open(folder / f"{index}-batch.jpg", "wb") as handle:
                handle.write(body)
        fd = os.open(folder, os.O_RDONLY)
        try:
            libc.syncfs(fd)
        finally:
            os.close(fd)

    writes: list[tuple[str, list[Any], Callable[[Any], None]]] = [
        ("write file (open, write, close)", numbered, lambda i: write(i, sync=False)),
        ("write file + fsync (as the downloader)", numbered, lambda i: write(i, sync=True)),
        (
            "write files, one syncfs per batch of 250",
            [numbered[i : i + 250] for i in range(0, n, 250)],
            write_then_one_sync,
        ),
    ]
    return [per_item(name, items, write, count=n) for name, items, write in writes]


def decoding_and_storing(work: Path, paths: list[Path]) -> list[dict[str, Any]]:
    """Pillow's checks of each stored file, a full decode for reference, and the store's
    commit of each under its sha256 name."""
    from PIL import Image

    from gallery_snapshot.store.local import LocalStore as Store
    from gallery_snapshot.validation import inspect_image

    def full_decode(path: Path) -> None:
        with Image.open(path) as image:
            image.load()

    n, store = len(paths), Store(work / "store")
    hashed = [(path, hashlib.sha256(path.read_bytes()).hexdigest()) for path in paths]
    pieces: list[tuple[str, list[Any], Callable[[Any], Any]]] = [
        (
            "Pillow: inspect_image(decode=True) (1/8 draft decode)",
            paths,
            lambda p: inspect_image(p, formats=("JPEG",), max_pixels=10**8),
        ),
        (
            "Pillow: header only (decode=False)",
            paths,
            lambda p: inspect_image(p, formats=("JPEG",), max_pixels=10**8, decode=False),
        ),
        ("Pillow: full-size decode (reference)", paths, full_decode),
        (
            "store.commit (link under the sha256 name)",
            hashed,
            lambda ph: store.commit(ph[0], sha256=ph[1], image_format="JPEG"),
        ),
    ]
    return [per_item(name, items, piece, count=n) for name, items, piece in pieces]


def whole_download_step(
    client: ImageClient, links: list[Link], work: Path, pid: int
) -> dict[str, Any]:
    """The whole per-image download step, one thread, into a store empty of these names."""
    from gallery_snapshot.downloader import fetch_one
    from gallery_snapshot.store.local import LocalStore as Store

    fresh = Store(work / "store2")
    staging = fresh.staging_dir("profile")
    staging.mkdir(parents=True)
    options = DownloadOptions(
        out_dir=str(fresh.root), snapshot_id="profile", allowed_hosts=frozenset({"127.0.0.1"})
    )
    return per_item(
        "fetch_one (whole download step, 1 thread)",
        links,
        lambda link: fetch_one(client, link, fresh, staging, options),
        count=len(links),
        gallery_pid=pid,
    )
