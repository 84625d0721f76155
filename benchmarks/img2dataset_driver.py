"""Runs img2dataset's ``download()`` once and prints what it measured as one JSON line.

Executed by the interpreter of img2dataset's own virtual environment (benchmarks/peer.py makes
it), never imported by the project: it needs nothing but the standard library and img2dataset.

    python benchmarks/img2dataset_driver.py '{"url_list": ..., "output_folder": ..., ...}'

It measures img2dataset the way benchmarks/run.py measures the project: wall and CPU seconds
(this process plus its reaped children, i.e. img2dataset's spawned download processes) of the
one call that does the work, after the imports; the download phase from img2dataset's own
per-shard stats (first shard start to last shard end).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


def cpu_seconds() -> float:
    return sum(
        usage.ru_utime + usage.ru_stime
        for usage in (
            resource.getrusage(resource.RUSAGE_SELF),
            resource.getrusage(resource.RUSAGE_CHILDREN),
        )
    )


def main() -> None:
    kwargs = json.loads(sys.argv[1])
    imported = time.perf_counter()
    from img2dataset import download  # about 1.5 s: cv2, pyarrow, albumentations, wandb

    import_s = time.perf_counter() - imported
    cpu_before = cpu_seconds()
    started = time.perf_counter()
    download(**kwargs)
    wall = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_before
    stats = [json.loads(p.read_text()) for p in Path(kwargs["output_folder"]).glob("*_stats.json")]
    if not stats:
        raise SystemExit("img2dataset wrote no shard stats")
    peak_kb = (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    )
    print(
        json.dumps(
            {
                "import_s": import_s,
                "wall_s": wall,
                "cpu_s": cpu,
                "peak_mb": peak_kb / 1024,
                "phase_s": max(s["end_time"] for s in stats) - min(s["start_time"] for s in stats),
                "shards": len(stats),
                "count": sum(s["count"] for s in stats),
                "successes": sum(s["successes"] for s in stats),
                "failed_to_download": sum(s["failed_to_download"] for s in stats),
                "failed_to_resize": sum(s["failed_to_resize"] for s in stats),
            }
        )
    )


if __name__ == "__main__":  # img2dataset spawns its workers, which re-import this module
    main()
