"""Where the snapshot's CPU goes per image: a py-spy profile of one whole snapshot, plus
single-threaded micro-measurements of each piece of the image hot path.

    .venv/bin/pip install py-spy        # not a project dependency; not in requirements.lock
    .venv/bin/python -m benchmarks.profile --images 2000 --latency 0.1 --workers 64

Part 1 runs one snapshot (threads runner) under ``py-spy record`` against the demo gallery and
a Prefect server (as benchmarks.run does), sorts every sample of the snapshot process into a
component (requests, urllib3/http.client/socket, hashing, file writes, fsync, Pillow, store
renames, Prefect, other) and scales the shares by the process's measured CPU. It also reports
the CPU the demo gallery and the Prefect server spent on the run.

Part 2 times each piece alone, one thread, on the same images served without latency: CPU
(``time.process_time``) and wall per image, with the gallery's own CPU per request.
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import functools
import hashlib
import inspect
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.run import (
    BIN,
    PER_PAGE,
    Services,
    process_cpu,
    start_gallery,
    wait_until_idle,
)
from gallery_snapshot.config import SourceSpec
from gallery_snapshot.demo_gallery import DEMO_CLIENT_ID
from gallery_snapshot.sources import list_links

# Rules, first match wins: (component, test on the sample's frames, leaf first).
Frames = list[str]


def _has(frames: Frames, text: str) -> bool:
    return any(text in frame for frame in frames)


def _leaf_package(frames: Frames) -> str:
    leaf = frames[0] if frames else ""
    for package in ("/requests/", "/urllib3/", "http/client.py", "socket.py", "/PIL/"):
        if package in leaf:
            return package.strip("/")
    return ""


def classify(frames: Frames) -> str:
    """The component a sample belongs to (frames leaf first, as ``func (file:line)``)."""
    if _has(frames, "_find_and_load"):
        return "start-up: imports"
    if _has(frames, "validate_fetched"):
        if _has(frames, "inspect_image"):
            if _has(frames, "load (") and _has(frames, "PIL"):
                return "validate: Pillow decode"
            return "validate: Pillow open/header"
        if _has(frames, "promote") or _has(frames, "quarantine"):
            return "validate: rename into store"
        return "validate: other (records)"
    if _has(frames, "fetch_one") or _has(frames, "fetch_batch"):
        stream = next((f for f in frames if f.startswith("_stream_to ")), None)
        if stream is not None and frames[0] == stream:
            # the C call is made from this line: which one tells what it is
            return f"download: _stream_to line {stream.rsplit(':', 1)[-1].rstrip(')')}"
        package = _leaf_package(frames)
        if package in ("urllib3", "http/client.py", "socket.py"):
            return "download: urllib3 + http.client + socket"
        if package == "requests":
            return "download: requests"
        if _has(frames, "image_path") or _has(frames, "is_file"):
            return "download: store lookup (is_file)"
        if _has(frames, "image_client") or _has(frames, "ImageClient.__init__"):
            return "download: client setup"
        if _has(frames, "concurrent/futures") or _has(frames, "threading.py"):
            return "download: thread pool"
        return "download: other"
    if _has(frames, "/prefect/") or _has(frames, "/anyio/") or _has(frames, "/httpx/"):
        return "Prefect (client, orchestration, logging, events)"
    if _has(frames, "/pydantic"):
        return "pydantic (outside tasks)"
    return "other (interpreter, threads, imports)"


def read_raw(path: Path) -> collections.Counter[str]:
    """py-spy's raw (folded) output: ``root;...;leaf count`` per line, per process."""
    counts: collections.Counter[str] = collections.Counter()
    for line in path.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack:
            continue
        frames = stack.split(";")[::-1]  # leaf first
        # py-spy prefixes the process (and thread, with --threads) as the root frames
        if frames and frames[-1].startswith("process "):
            frames = frames[:-1]
        counts[classify(frames)] += int(number)
    return counts


def stream_lines() -> dict[str, str]:
    """Line numbers of downloader._stream_to mapped to what they do."""
    from gallery_snapshot import downloader

    source, first = inspect.getsourcelines(downloader._stream_to)
    names = {
        "digest.update": "sha256",
        "sink.write": "file write",
        "read_body(": "read body (urllib3 stream)",
    }
    lines = {}
    for offset, text in enumerate(source):
        for needle, name in names.items():
            if needle in text:
                lines[str(first + offset)] = name
    return lines


def profile_snapshot(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    py_spy = BIN / "py-spy"
    if not py_spy.is_file():
        raise SystemExit(f"{py_spy} is missing: .venv/bin/pip install py-spy")
    work.mkdir(parents=True)
    services = Services(work, images=args.images, latency=args.latency)
    try:
        out = work / "out"
        raw = work / "profile.txt"
        server_before = process_cpu(services.server.pid)
        gallery_before = process_cpu(services.gallery.pid)
        command = [
            str(py_spy),
            "record",
            "--format",
            "raw",
            "--rate",
            str(args.rate),
            *(["--gil"] if args.gil else []),
            "--output",
            str(raw),
            "--",
            sys.executable,
            "-m",
            "benchmarks.run",
            "child",
            "--api-url",
            services.gallery_api,
            "--runner",
            "threads",
            "--workers",
            str(args.workers),
            "--pages",
            str(math.ceil(args.images / PER_PAGE)),
            "--out",
            str(out),
        ]
        done = subprocess.run(command, env=services.env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-3000:])
        gallery_cpu = process_cpu(services.gallery.pid) - gallery_before
        server_cpu = wait_until_idle(services.server.pid) - server_before
        result = json.loads(
            next(line for line in reversed(done.stdout.splitlines()) if line.startswith("{"))
        )
        if args.keep_profile:
            shutil.copy(raw, args.keep_profile)
        timeline = task_timeline(services.api_url, result["flow_run_id"])
    finally:
        services.close()
    counts = read_raw(raw)
    lines = stream_lines()
    named: collections.Counter[str] = collections.Counter()
    for component, count in counts.items():
        if component.startswith("download: _stream_to line "):
            line = component.rsplit(" ", 1)[-1]
            component = f"download: {lines.get(line, 'line ' + line)}"
        named[component] += count
    total = sum(named.values())
    # With --gil only the thread holding the GIL is sampled: a sample is 1/rate s of Python
    # running (C code that releases the GIL - socket waits, fsync, Pillow's decoder, hashing
    # of large buffers - is not in it). Without --gil py-spy also counts threads parked in
    # recv() as active here, so the samples are closer to wall time than to CPU.
    per_image = 1000 / args.rate / args.images
    return {
        "mode": "gil" if args.gil else "active threads",
        "snapshot_cpu_ms_per_image": round(1000 * result["cpu_s"] / args.images, 3),
        "snapshot_flow_wall_s": round(result["wall_s"], 2),
        "samples": total,
        "sampled_ms_per_image": round(total * per_image, 3),
        "components": {
            name: {"share": round(count / total, 3), "ms_per_image": round(count * per_image, 3)}
            for name, count in named.most_common()
        },
        "demo_gallery_cpu_ms_per_image": round(1000 * gallery_cpu / args.images, 3),
        "prefect_server_cpu_ms_per_image": round(1000 * server_cpu / args.images, 3),
        "timeline": timeline,
    }


def task_timeline(api_url: str, flow_run_id: str) -> list[str]:
    """The flow's task runs as ``name start-end`` in seconds from the first start."""
    import requests

    runs = requests.post(
        f"{api_url}/task_runs/filter",
        json={"flow_runs": {"id": {"any_": [flow_run_id]}}, "limit": 200},
        timeout=60,
    ).json()
    runs = [r for r in runs if r["start_time"] and r["end_time"]]
    start = min(datetime.fromisoformat(r["start_time"]) for r in runs)
    lines = []
    for run in sorted(runs, key=lambda r: r["start_time"]):
        began = (datetime.fromisoformat(run["start_time"]) - start).total_seconds()
        ended = (datetime.fromisoformat(run["end_time"]) - start).total_seconds()
        lines.append(f"{run['name']} {began:.2f}-{ended:.2f}")
    return lines


# -- part 2: each piece alone -------------------------------------------------------------


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
    import urllib3
    from PIL import Image

    from gallery_snapshot.downloader import DownloadOptions, _check_status, _open_stream, fetch_one
    from gallery_snapshot.http import Deadline, image_client, make_session
    from gallery_snapshot.models import Link
    from gallery_snapshot.store.local import LocalStore as Store
    from gallery_snapshot.validation import inspect_image

    gallery, api = start_gallery(args.images, latency=0.0)
    results = []
    try:
        listing = list_links(
            SourceSpec(api_url=api, pages=math.ceil(args.images / PER_PAGE)),
            client_id=DEMO_CLIENT_ID,
        )
        links = listing.links[: args.images]
        urls = [link.url for link in links]
        n = len(urls)
        bodies = [urllib.request.urlopen(url).read() for url in urls]  # loopback
        with Image.open(io.BytesIO(bodies[0])) as first:
            size = first.size
        print(f"{n} images, {sum(map(len, bodies)) / n / 1024:.1f} KB each, {size}", flush=True)
        pid = gallery.pid
        options = DownloadOptions(
            out_dir=str(work / "store"),
            snapshot_id="profile",
            allowed_hosts=frozenset({"127.0.0.1"}),
        )

        # HTTP clients: fetch and drain each body, nothing else
        client = image_client()

        def with_project(link: Link) -> None:
            with _open_stream(client, link, options, Deadline(options.deadline)) as response:
                _check_status(response)
                for _ in response.stream(64 * 1024):
                    pass

        results.append(
            per_item(
                "GET: project (_open_stream over urllib3 + stream)",
                links,
                with_project,
                count=n,
                gallery_pid=pid,
            )
        )

        session = make_session(pool_size=1)

        def with_requests(url: str) -> None:
            with session.get(url, stream=True, allow_redirects=False, timeout=30) as response:
                for _ in response.iter_content(64 * 1024):
                    pass

        results.append(
            per_item(
                "GET: requests Session, streamed", urls, with_requests, count=n, gallery_pid=pid
            )
        )
        session.close()

        pool = urllib3.PoolManager(maxsize=1, retries=False)

        def with_urllib3(url: str) -> None:
            response = pool.request(
                "GET", url, preload_content=False, redirect=False, timeout=urllib3.Timeout(30, 30)
            )
            for _ in response.stream(64 * 1024):
                pass
            response.release_conn()

        results.append(
            per_item(
                "GET: urllib3 PoolManager, streamed", urls, with_urllib3, count=n, gallery_pid=pid
            )
        )

        def with_urlopen(url: str) -> None:
            with urllib.request.urlopen(url, timeout=30) as response:
                response.read()

        results.append(
            per_item(
                "GET: urllib.request.urlopen (img2dataset; new connection each)",
                urls,
                with_urlopen,
                count=n,
                gallery_pid=pid,
            )
        )

        results.append(
            per_item("sha256 of the body", bodies, lambda b: hashlib.sha256(b).hexdigest(), count=n)
        )

        folder = work / "files"
        folder.mkdir()
        numbered = list(enumerate(bodies))

        def write(item: tuple[int, bytes], *, sync: bool) -> None:
            index, body = item
            with open(folder / f"{index}-{sync}.jpg", "wb") as handle:
                handle.write(body)
                if sync:
                    handle.flush()
                    os.fsync(handle.fileno())

        results.append(
            per_item(
                "write file (open, write, close)", numbered, lambda i: write(i, sync=False), count=n
            )
        )
        results.append(
            per_item(
                "write file + fsync (as the downloader)",
                numbered,
                lambda i: write(i, sync=True),
                count=n,
            )
        )
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

        results.append(
            per_item(
                "write files, one syncfs per batch of 250",
                [numbered[i : i + 250] for i in range(0, n, 250)],
                write_then_one_sync,
                count=n,
            )
        )

        store = Store(work / "store")
        paths = [folder / f"{index}-True.jpg" for index in range(n)]
        results.append(
            per_item(
                "Pillow: inspect_image(decode=True) (1/8 draft decode)",
                paths,
                lambda p: inspect_image(p, formats=("JPEG",), max_pixels=10**8),
                count=n,
            )
        )
        results.append(
            per_item(
                "Pillow: header only (decode=False)",
                paths,
                lambda p: inspect_image(p, formats=("JPEG",), max_pixels=10**8, decode=False),
                count=n,
            )
        )

        def full_decode(path: Path) -> None:
            with Image.open(path) as image:
                image.load()

        results.append(
            per_item("Pillow: full-size decode (reference)", paths, full_decode, count=n)
        )
        hashed = [(path, hashlib.sha256(path.read_bytes()).hexdigest()) for path in paths]
        results.append(
            per_item(
                "store.commit (link under the sha256 name)",
                hashed,
                lambda ph: store.commit(ph[0], sha256=ph[1], image_format="JPEG"),
                count=n,
            )
        )

        # the whole per-image download step, one thread (store empty of these names)
        fresh = Store(work / "store2")
        fresh.staging_dir("profile").mkdir(parents=True)
        options2 = DownloadOptions(
            out_dir=str(fresh.root), snapshot_id="profile", allowed_hosts=frozenset({"127.0.0.1"})
        )
        results.append(
            per_item(
                "fetch_one (whole download step, 1 thread)",
                links,
                lambda link: fetch_one(client, link, fresh, options2),
                count=n,
                gallery_pid=pid,
            )
        )
    finally:
        gallery.terminate()
        gallery.wait(timeout=30)
    return results


# -- part 3: the hot path without Prefect, arranged in different ways ----------------------


def direct(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    """The project's download and validation functions, called without Prefect at
    ``args.workers`` concurrency, in the flow's arrangement and in the ones the issue proposes
    (validation overlapping downloads; one pool, no batches; urllib3 and one sync per batch).
    The last arrangements are sketches in this file, not the package's code."""
    import concurrent.futures as cf

    import urllib3

    from gallery_snapshot.config import SnapshotConfig
    from gallery_snapshot.downloader import DownloadOptions, fetch_one
    from gallery_snapshot.http import image_client, make_session
    from gallery_snapshot.models import FetchResult, Link
    from gallery_snapshot.pipeline import download_and_validate, plan_downloads, step_options
    from gallery_snapshot.store.local import LocalStore as Store
    from gallery_snapshot.validation import inspect_image, validate_fetched

    gallery, api = start_gallery(args.images, latency=args.latency)
    results: list[dict[str, Any]] = []
    try:
        links = list_links(
            SourceSpec(api_url=api, pages=math.ceil(args.images / PER_PAGE)),
            client_id=DEMO_CLIENT_ID,
        ).links[: args.images]
        n, workers = len(links), args.workers
        config = SnapshotConfig(
            allowed_hosts=["127.0.0.1"], workers=workers, formats=["jpeg"], max_pixels=10**8
        )
        planned = plan_downloads(links, config)
        formats, max_pixels = config.pillow_formats, config.max_pixels

        def options(out: Path, threads: int) -> DownloadOptions:
            return DownloadOptions(
                out_dir=str(out),
                snapshot_id="direct",
                allowed_hosts=frozenset({"127.0.0.1"}),
                threads=threads,
            )

        def validate(out: Path, batch: list[FetchResult]) -> None:
            records = validate_fetched(
                batch,
                out_dir=str(out),
                snapshot_id="direct",
                formats=formats,
                max_pixels=max_pixels,
            )
            assert all(r.status == "downloaded" for r in records), records[:3]

        def flow_order(out: Path) -> None:
            """The flow's arrangement, through the pipeline's own steps: the plan's shrinking
            batches on the process's shared download threads, ``DOWNLOADS_IN_FLIGHT`` at a
            time, each validated as it ends."""
            options = step_options(
                config, out_dir=str(out), snapshot_id="direct", threads=planned.plan.threads
            )
            records = download_and_validate(planned.batches, options)
            assert all(r.status == "downloaded" for r in records), records[:3]

        def one_pool(out: Path) -> None:
            """No batches: one pool of ``workers`` threads over one client; each thread
            validates and stores its own image right after downloading it."""
            store = Store(out)
            opts = options(out, workers)
            staging = store.staging_dir("direct")
            staging.mkdir(parents=True)
            client = image_client()

            def one(link: Link) -> None:
                validate(out, [fetch_one(client, link, store, staging, opts)])

            with cf.ThreadPoolExecutor(workers) as pool:
                list(pool.map(one, links))

        http = urllib3.PoolManager(maxsize=workers, retries=False)
        session = make_session(pool_size=workers)

        def lean_one(out: Path, staging: Path, link: Link, *, client: str, fsync: bool) -> None:
            """One image: GET, stream to staging with sha256, (fsync,) validate, rename."""
            target = staging / f"{link.rank}.jpg"
            digest = hashlib.sha256()
            with open(target, "wb") as handle:
                if client == "urllib3":
                    response = http.request(
                        "GET",
                        link.url,
                        preload_content=False,
                        redirect=False,
                        timeout=urllib3.Timeout(30, 30),
                    )
                    assert response.status == 200
                    chunks: Iterable[bytes] = response.stream(64 * 1024)
                else:
                    got = session.get(link.url, stream=True, allow_redirects=False, timeout=30)
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
            inspect_image(target, formats=formats, max_pixels=max_pixels)
            os.replace(target, out / "images" / f"{digest.hexdigest()}.jpg")

        def lean(out: Path, *, client: str, fsync: bool) -> None:
            """One pool; one syncfs at the end unless every image was fsynced."""
            staging = out / ".staging"
            staging.mkdir(parents=True)
            (out / "images").mkdir()
            with cf.ThreadPoolExecutor(workers) as pool:
                list(
                    pool.map(
                        lambda link: lean_one(out, staging, link, client=client, fsync=fsync),
                        links,
                    )
                )
            if not fsync:
                fd = os.open(out, os.O_RDONLY)
                try:
                    ctypes.CDLL(None, use_errno=True).syncfs(fd)
                finally:
                    os.close(fd)

        arrangements: list[tuple[str, Callable[[Path], None]]] = [
            (f"flow's arrangement: {len(planned.batches)} shrinking batches", flow_order),
            (f"one pool of {workers} threads, validate in the download thread", one_pool),
            *(
                (
                    f"one pool of {workers}, {client}, "
                    + ("fsync per image" if fsync else "one syncfs at the end"),
                    functools.partial(lean, client=client, fsync=fsync),
                )
                for client in ("requests", "urllib3")
                for fsync in (True, False)
            ),
        ]
        for name, arrangement in arrangements:
            if args.only and args.only not in name:
                continue
            walls, cpus, gallery_cpus = [], [], []
            for attempt in range(args.repeat):
                out = work / f"direct-{len(results)}-{attempt}"
                gallery_before = process_cpu(gallery.pid)
                cpu_before = time.process_time()
                started = time.perf_counter()
                arrangement(out)
                walls.append(time.perf_counter() - started)
                cpus.append(time.process_time() - cpu_before)
                gallery_cpus.append(process_cpu(gallery.pid) - gallery_before)
                shutil.rmtree(out, ignore_errors=True)
            wall = sorted(walls)[len(walls) // 2]
            entry = {
                "what": name,
                "concurrency": workers,
                "phase_s": round(wall, 2),
                "images_per_s": round(n / wall, 1),
                "efficiency": round(n * args.latency / workers / wall, 2),
                "cpu_ms_per_image": round(1000 * sorted(cpus)[len(cpus) // 2] / n, 3),
                "gallery_cpu_ms_per_image": round(
                    1000 * sorted(gallery_cpus)[len(gallery_cpus) // 2] / n, 3
                ),
            }
            print(json.dumps(entry), flush=True)
            results.append(entry)
    finally:
        gallery.terminate()
        gallery.wait(timeout=30)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument(
        "--no-gil",
        dest="gil",
        action="store_false",
        help="sample every active thread, not only the GIL holder",
    )
    parser.add_argument("--keep-profile", help="copy py-spy's raw output here")
    parser.add_argument("--skip-snapshot", action="store_true")
    parser.add_argument("--skip-micro", action="store_true")
    parser.add_argument("--direct", action="store_true", help="run part 3 (no Prefect)")
    parser.add_argument("--only", help="part 3: run the arrangements whose name has this")
    parser.add_argument("--repeat", type=int, default=3, help="runs per arrangement in part 3")
    args = parser.parse_args()
    report: dict[str, Any] = {"args": vars(args)}
    with tempfile.TemporaryDirectory(prefix="gallery-snapshot-profile-") as temp:
        if not args.skip_snapshot:
            report["snapshot"] = profile_snapshot(args, Path(temp) / "snapshot")
            print(json.dumps(report["snapshot"], indent=2), flush=True)
        if not args.skip_micro:
            (Path(temp) / "micro").mkdir()
            report["micro"] = micro(args, Path(temp) / "micro")
        if args.direct:
            (Path(temp) / "direct").mkdir()
            report["direct"] = direct(args, Path(temp) / "direct")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
