"""Throughput benchmark: the project's runners against the article's designs, on the demo
gallery with N generated JPEGs behind an injected per-image latency L.

    make bench                                  # N=2000, L=100 ms, the default set of runs
    .venv/bin/python -m benchmarks.run --images 20000 --runs threads:64 --no-baselines
    .venv/bin/python -m benchmarks.run --images 100000 --latency 0.02 --runs threads:64 \
        --no-baselines --no-img2dataset --no-warm       # the large snapshot: RSS, report tail

It starts a Prefect server and the demo gallery (each in its own process), runs every design
on the same links, and writes benchmarks/results/<time>.json and .md. For the project, the
download+validate phase is read from the server's task runs (first download start to last
validation end); CPU and peak memory are the snapshot process's (and its workers'); server CPU
is the Prefect server process's, measured until it goes idle after the run.

img2dataset (benchmarks/peer.py, installed on first use into its own venv) runs on the same
links at each concurrency the project runs at; its phase is its own shard stats' first start
to last end, its wall and CPU those of its ``download()`` call, as for the project's flow call.
Each project row gets ``x img2dataset``: its images/s over img2dataset's at the same
concurrency.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from benchmarks import baselines, peer
from benchmarks.services import (
    BIN,
    PER_PAGE,
    Services,
    descendants_peak_kb,
    measure,
    process_cpu,
    wait_until_idle,
)
from benchmarks.table import PEER_DESIGN, add_ratios, markdown, row, summarize
from gallery_snapshot.config import SourceSpec
from gallery_snapshot.demo_gallery import DEMO_CLIENT_ID
from gallery_snapshot.sources import list_links

RESULTS = Path(__file__).resolve().parent / "results"


def run_baselines(links: list[str], args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    designs: list[tuple[str, Callable[[Path, list[str]], None], int, int]] = [
        ("article: sequential", baselines.sequential, 1, min(len(links), args.sequential_sample)),
        ("article: 8 threads on a queue", baselines.threads_on_a_queue, 8, len(links)),
        ("article: multiprocessing.Pool(8)", baselines.process_pool, 8, len(links)),
    ]
    rows = []
    for name, design, concurrency, count in designs:
        folder = Path(tempfile.mkdtemp(dir=work))
        wall, cpu = measure(
            lambda design=design, folder=folder, count=count: design(folder, links[:count])
        )
        rows.append(
            row(
                name,
                concurrency,
                count,
                args.latency,
                wall,
                cpu_ms_per_image=round(1000 * cpu / count, 2),
            )
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def run_peer(
    links: list[str], args: argparse.Namespace, work: Path, env: dict[str, str]
) -> list[dict[str, Any]]:
    """img2dataset, ``args.repeat`` times at each concurrency, on the same links."""
    python = peer.ensure_installed()
    rows = []
    for concurrency in args.img2dataset_concurrency:
        samples = [
            peer.run_img2dataset(python, links, work, concurrency, env) for _ in range(args.repeat)
        ]
        median = statistics.median
        rows.append(
            row(
                PEER_DESIGN,
                concurrency,
                len(links),
                args.latency,
                median(s["phase_s"] for s in samples),
                cpu_ms_per_image=round(1000 * median(s["cpu_s"] for s in samples) / len(links), 2),
                peak_mb=round(median(s["peak_mb"] for s in samples)),
                end_to_end_s=round(median(s["wall_s"] for s in samples), 2),
                process_s=round(median(s["process_s"] for s in samples), 2),
                runs=len(samples),
            )
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def phase_seconds(api_url: str, flow_run_id: str) -> tuple[float, float]:
    """First download start to last validation end, and from there to the end of the report
    (manifest, page and report written), from the server's task runs."""
    runs: list[dict[str, Any]] = []
    while True:
        page = requests.post(
            f"{api_url}/task_runs/filter",
            json={"flow_runs": {"id": {"any_": [flow_run_id]}}, "limit": 200, "offset": len(runs)},
            timeout=60,
        ).json()
        runs += page
        if len(page) < 200:
            break
    phase = [run for run in runs if run["name"].startswith(("download_images", "validate_images"))]
    starts = [datetime.fromisoformat(run["start_time"]) for run in phase]
    ends = [datetime.fromisoformat(run["end_time"]) for run in phase]
    [report] = [run for run in runs if run["name"].startswith("publish_report")]
    tail = datetime.fromisoformat(report["end_time"]) - max(ends)
    return (max(ends) - min(starts)).total_seconds(), tail.total_seconds()


def timed_snapshot(
    program: list[str], services: Services, out: Path, runner: str, workers: int, pages: int
) -> tuple[str, float]:
    """Run ``program`` (a snapshot command) on the gallery's links; its stdout and wall seconds."""
    started = time.perf_counter()
    done = subprocess.run(
        [
            *program,
            "--api-url",
            services.gallery_api,
            "--runner",
            runner,
            "--workers",
            str(workers),
            "--pages",
            str(pages),
            "--out",
            str(out),
        ],
        env=services.env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"snapshot failed: {done.stderr[-2000:]}")
    return done.stdout, seconds


def run_project(
    services: Services, out: Path, runner: str, workers: int, pages: int
) -> dict[str, Any]:
    """One snapshot in a fresh process (so its peak memory is its own)."""
    server_cpu = process_cpu(services.server.pid)
    program = [sys.executable, "-m", "benchmarks.run", "child"]
    stdout, process_s = timed_snapshot(program, services, out, runner, workers, pages)
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    result["process_s"] = process_s
    result["server_cpu_s"] = wait_until_idle(services.server.pid) - server_cpu
    result["phase_s"], result["tail_s"] = phase_seconds(services.api_url, result["flow_run_id"])
    return result


def run_cli(services: Services, out: Path, runner: str, workers: int, pages: int) -> float:
    """Wall seconds of the whole ``gallery-snapshot run`` command, the server already up."""
    program = [str(BIN / "gallery-snapshot"), "run", "--allow-host", "127.0.0.1"]
    _, wall = timed_snapshot(program, services, out, runner, workers, pages)
    wait_until_idle(services.server.pid)  # the next run starts on an idle server
    return wall


def cli_rows(services: Services, args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    """``gallery-snapshot run`` at each of ``--runs``: the wall time a user waits, to set
    against img2dataset's whole command (its process_s)."""
    rows = []
    for spec in args.runs.split(","):
        runner, _, workers_text = spec.partition(":")
        workers = int(workers_text or 8)
        walls = [
            run_cli(
                services,
                Path(tempfile.mkdtemp(dir=work)),
                runner,
                workers,
                math.ceil(args.images / PER_PAGE),
            )
            for _ in range(args.repeat)
        ]
        rows.append(
            {
                "design": f"project: `gallery-snapshot run`, {runner}",
                "concurrency": workers,
                "images": args.images,
                "process_s": round(statistics.median(walls), 2),
                "runs": len(walls),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def child(args: argparse.Namespace) -> None:
    """Run one snapshot in this process and print its measurements as JSON."""
    from flows.snapshot import gallery_snapshot
    from gallery_snapshot.config import SnapshotConfig
    from gallery_snapshot.run_policy import trust_terminal_user

    trust_terminal_user()  # its options are the benchmark's user's, as the CLI's are
    config = SnapshotConfig(
        source=SourceSpec(api_url=args.api_url, pages=args.pages),
        allowed_hosts=["127.0.0.1"],
        out_dir=args.out,
        runner=args.runner,
        workers=args.workers,
    )
    holder: dict[str, Any] = {}

    def snapshot() -> None:
        holder["state"] = gallery_snapshot(config, return_state=True)

    wall, cpu = measure(snapshot)
    state = holder["state"]
    summary = state.result()
    peak_kb = (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # the largest child's, as img2dataset's: the validation processes live until now
        + max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, descendants_peak_kb())
    )
    print(
        json.dumps(
            {
                "flow_run_id": str(state.state_details.flow_run_id),
                "wall_s": wall,
                "cpu_s": cpu,
                "peak_mb": peak_kb / 1024,
                "counts": summary["counts"],
            }
        )
    )


def project_rows(services: Services, args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    pages = math.ceil(args.images / PER_PAGE)
    rows = []
    for spec in args.runs.split(","):
        runner, _, workers_text = spec.partition(":")
        workers = int(workers_text or 8)
        samples = []
        for _ in range(args.repeat):
            out = Path(tempfile.mkdtemp(dir=work))
            result = run_project(services, out, runner, workers, pages)
            stored = result["counts"]["downloaded"]
            assert stored == args.images, f"only {stored} of {args.images} images stored"
            samples.append(result)
        rows.append(summarize(f"project: {runner}", workers, args, samples))
        print(json.dumps(rows[-1]), flush=True)
    if args.no_warm:
        return rows
    warm_runner, _, warm_workers = args.runs.split(",")[-1].partition(":")
    warm = []
    for _ in range(args.repeat):
        out = Path(tempfile.mkdtemp(dir=work))
        run_project(services, out, warm_runner, int(warm_workers or 8), pages)
        result = run_project(services, out, warm_runner, int(warm_workers or 8), pages)
        assert result["counts"]["reused"] == args.images
        warm.append(result)
    rows.append(
        summarize(
            f"project: {warm_runner}, warm re-run (all reused)",
            int(warm_workers or 8),
            args,
            warm,
            latency=0.0,
        )
    )
    print(json.dumps(rows[-1]), flush=True)
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="gallery-snapshot throughput benchmark")
    sub = parser.add_subparsers(dest="command")
    one = sub.add_parser("child", help=argparse.SUPPRESS)
    for name, kind in (
        ("--api-url", str),
        ("--runner", str),
        ("--workers", int),
        ("--pages", int),
        ("--out", str),
    ):
        one.add_argument(name, type=kind, required=True)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per image")
    parser.add_argument(
        "--runs",
        default="threads:8,threads:32,processes:64,dask:64,threads:64",
        help="runner:workers list; the last one also gets the warm re-run",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per design (medians)")
    parser.add_argument(
        "--sequential-sample",
        type=int,
        default=200,
        help="images for the sequential baseline (it is slow)",
    )
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--no-warm", action="store_true", help="skip the warm re-run")
    parser.add_argument(
        "--cli", action="store_true", help="also time the whole `gallery-snapshot run` command"
    )
    parser.add_argument("--no-img2dataset", action="store_true", help="skip the img2dataset peer")
    parser.add_argument(
        "--img2dataset-concurrency",
        type=lambda text: [int(c) for c in text.split(",")],
        default=None,
        help="concurrencies to run img2dataset at (default: those of --runs)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.command == "child":
        return child(args)
    if args.img2dataset_concurrency is None:
        args.img2dataset_concurrency = sorted(
            {int(spec.partition(":")[2] or 8) for spec in args.runs.split(",")}
        )
    if args.no_img2dataset:
        args.img2dataset_concurrency = []
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gallery-snapshot-bench-") as temp:
        work = Path(temp)
        services = Services(work, images=args.images, latency=args.latency)
        try:
            listing = list_links(
                SourceSpec(api_url=services.gallery_api, pages=math.ceil(args.images / PER_PAGE)),
                client_id=DEMO_CLIENT_ID,
            )
            links = [link.url for link in listing.links]
            rows = [] if args.no_baselines else run_baselines(links, args, work)
            if args.img2dataset_concurrency:
                rows += run_peer(links, args, work, services.env)
            rows += project_rows(services, args, work)
            if args.cli:
                rows += cli_rows(services, args, work)
            add_ratios(rows)
        finally:
            services.close()
    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    table = markdown(rows, args)
    (RESULTS / f"{stamp}.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))
    (RESULTS / f"{stamp}.md").write_text(table)
    print()
    print(table)
    print(f"written to {RESULTS / stamp}.json and .md")


if __name__ == "__main__":
    main()
