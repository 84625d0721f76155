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
(``time.process_time``) and wall per image, with the gallery's own CPU per request
(benchmarks/profile_pieces.py). Part 3 (``--direct``) times the download and validation
without Prefect, in the flow's arrangement and others (benchmarks/profile_arrangements.py).
"""

from __future__ import annotations

import argparse
import collections
import inspect
import json
import math
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.profile_arrangements import direct
from benchmarks.profile_pieces import micro
from benchmarks.services import (
    BIN,
    PER_PAGE,
    Services,
    process_cpu,
    wait_until_idle,
)

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
        raw = work / "profile.txt"
        server_before = process_cpu(services.server.pid)
        gallery_before = process_cpu(services.gallery.pid)
        command = py_spy_command(py_spy, args, raw, services.gallery_api, work / "out")
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
    named = named_components(read_raw(raw))
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


def py_spy_command(
    py_spy: Path, args: argparse.Namespace, raw: Path, gallery_api: str, out: Path
) -> list[str]:
    """``py-spy record`` of one snapshot in ``benchmarks.run child``, its samples in ``raw``."""
    return [
        str(py_spy),
        "record",
        "--format",
        "raw",
        *(["--subprocesses"] if args.runner != "threads" else []),
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
        gallery_api,
        "--runner",
        args.runner,
        "--workers",
        str(args.workers),
        "--pages",
        str(math.ceil(args.images / PER_PAGE)),
        "--out",
        str(out),
    ]


def named_components(counts: collections.Counter[str]) -> collections.Counter[str]:
    """``counts`` with each ``_stream_to`` line named by what it does."""
    lines = stream_lines()
    named: collections.Counter[str] = collections.Counter()
    for component, count in counts.items():
        if component.startswith("download: _stream_to line "):
            line = component.rsplit(" ", 1)[-1]
            component = f"download: {lines.get(line, 'line ' + line)}"
        named[component] += count
    return named


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--runner", default="threads", choices=("threads", "processes"))
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
