"""Scale-out figures: the same snapshot into a local folder and into an S3-compatible store,
on the threads runner and on a real 2-worker Dask cluster.

    .venv/bin/python -m benchmarks.scale_out --images 2000 --latency 0.1 --workers 32 --repeat 3

Starts a Prefect server and the demo gallery (benchmarks/services.py), moto's S3 server
with authentication (tests/support/s3_server.py) and, for the Dask rows, a scheduler and two
``dask worker`` processes sharing no folder (tests/support/dask_cluster.py). Each row runs
``gallery-snapshot run`` as a user would, into a fresh folder or bucket, then once more into
the same one (every image reused). Wall is the whole command; medians of ``--repeat`` runs.
S3 server CPU is moto's own (a Python server on the same 2 cores: a real S3 costs this machine
none of it).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.services import BIN, PER_PAGE, Services, process_cpu
from tests.support.dask_cluster import DaskCluster
from tests.support.s3_server import S3Server

Target = Callable[[], str]  # a fresh --out for each run


def snapshot(argv: list[str], env: dict[str, str]) -> float:
    started = time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.strip()}")
    return seconds


@contextmanager
def cluster_if(runner: str, work: Path, env: dict[str, str]) -> Iterator[list[str]]:
    """The ``--runner`` options of a row; for dask, a cluster that lives for the row."""
    if runner != "dask":
        yield ["--runner", runner]
        return
    with DaskCluster(work / f"cluster-{uuid.uuid4().hex[:6]}", env=env, nthreads=2) as cluster:
        yield ["--runner", "dask", "--dask-address", cluster.address]


def snapshot_argv(
    services: Services, args: argparse.Namespace, out: str, runner_options: list[str]
) -> list[str]:
    """``gallery-snapshot run`` of every page of the benchmark's gallery into ``out``."""
    return [
        str(BIN / "gallery-snapshot"),
        "run",
        "--api-url",
        services.gallery_api,
        "--allow-host",
        "127.0.0.1",
        "--pages",
        str(-(-args.images // PER_PAGE)),
        "--workers",
        str(args.workers),
        "--out",
        out,
        *runner_options,
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        services = Services(work, images=args.images, latency=args.latency)
        try:
            with S3Server(work / "s3.log") as s3:
                env = {**services.env, **s3.env()}

                def bucket() -> str:
                    name = f"bench-{uuid.uuid4().hex[:8]}"
                    s3.create_bucket(name)
                    return f"s3://{name}/snapshots"

                def local() -> str:
                    return str(work / f"out-{uuid.uuid4().hex[:8]}")

                rows: list[tuple[str, str, Target]] = [
                    ("threads", "local disk", local),
                    ("threads", "S3 (moto)", bucket),
                    ("dask", "S3 (moto)", bucket),
                ]
                print(
                    f"N={args.images} images, latency {args.latency * 1000:.0f} ms, "
                    f"--workers {args.workers}, medians of {args.repeat}"
                )
                print(
                    "| runner | output | first run, s | images/s | S3 server CPU, s "
                    "| re-run (all reused), s |"
                )
                print("|---|---|---|---|---|---|")
                for runner, where, target in rows:
                    firsts, reruns, s3_cpu = [], [], []
                    for _ in range(args.repeat):
                        out = target()
                        with cluster_if(runner, work, env) as runner_options:
                            argv = snapshot_argv(services, args, out, runner_options)
                            before = process_cpu(s3.pid)
                            firsts.append(snapshot(argv, env))
                            s3_cpu.append(process_cpu(s3.pid) - before)
                            reruns.append(snapshot(argv, env))
                    first = statistics.median(firsts)
                    server = statistics.median(s3_cpu) if "S3" in where else 0.0
                    print(
                        f"| {runner} | {where} | {first:.1f} | {args.images / first:.0f} | "
                        f"{server:.1f} | {statistics.median(reruns):.1f} |",
                        flush=True,
                    )
        finally:
            services.close()


if __name__ == "__main__":
    main()
