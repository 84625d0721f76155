"""The benchmark's rows and its Markdown table: one row per design and concurrency, medians of
the runs, and each project row's images/s over img2dataset's."""

from __future__ import annotations

import argparse
import os
import statistics
from datetime import UTC, datetime
from typing import Any

from benchmarks import peer

PEER_DESIGN = f"img2dataset {peer.VERSION}: download only, no decode"
PEER_NOTES = [
    f"- {PEER_DESIGN}: `--resize_mode no --disable_all_reencoding True --extract_exif False"
    " --output_format files`, 2 processes of C/2 threads, one shard each; it hashes every image"
    " (sha256) and writes a .json per image, but validates nothing (any HTTP 200 body is"
    " stored). The project decodes every image with Pillow and moves it into the store.",
    "- phase_s: the project's from its task runs (first download start to last validation"
    " end); img2dataset's from its shard stats (first shard start to last shard end)."
    " end_to_end_s: the flow call / the `download()` call; process_s: the whole command"
    " (interpreter start, imports, run). report_tail_s: the project's last validation end to"
    " its report's end (manifest, page and artifacts written).",
    "- x img2dataset: project images/s over img2dataset's at the same concurrency.",
]


def row(
    design: str, concurrency: int, images: int, latency: float, seconds: float, **extra: Any
) -> dict[str, Any]:
    ideal = images * latency / concurrency
    return {
        "design": design,
        "concurrency": concurrency,
        "images": images,
        "phase_s": round(seconds, 2),
        "images_per_s": round(images / seconds, 1),
        "efficiency": round(ideal / seconds, 2) if latency else None,
        **extra,
    }


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """``x img2dataset`` on each project download row: its images/s over img2dataset's at the
    same concurrency (none for the warm re-run, which downloads nothing, nor for the CLI's
    wall-time rows)."""
    peers = {r["concurrency"]: r["images_per_s"] for r in rows if r["design"] == PEER_DESIGN}
    for entry in rows:
        theirs = peers.get(entry["concurrency"])
        project = entry["design"].startswith("project:") and "warm" not in entry["design"]
        if project and theirs and "images_per_s" in entry:
            entry["x_img2dataset"] = round(entry["images_per_s"] / theirs, 2)


def summarize(
    design: str,
    workers: int,
    args: argparse.Namespace,
    samples: list[dict[str, Any]],
    latency: float | None = None,
) -> dict[str, Any]:
    median = statistics.median
    return row(
        design,
        workers,
        args.images,
        args.latency if latency is None else latency,
        median(s["phase_s"] for s in samples),
        cpu_ms_per_image=round(1000 * median(s["cpu_s"] for s in samples) / args.images, 2),
        peak_mb=round(median(s["peak_mb"] for s in samples)),
        server_cpu_ms_per_image=round(
            1000 * median(s["server_cpu_s"] for s in samples) / args.images, 2
        ),
        end_to_end_s=round(median(s["wall_s"] for s in samples), 2),
        process_s=round(median(s["process_s"] for s in samples), 2),
        report_tail_s=round(median(s["tail_s"] for s in samples), 2),
        runs=len(samples),
    )


def markdown(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    columns = [
        "design",
        "concurrency",
        "images",
        "phase_s",
        "images_per_s",
        "efficiency",
        "cpu_ms_per_image",
        "peak_mb",
        "server_cpu_ms_per_image",
        "end_to_end_s",
        "process_s",
        "report_tail_s",
        "x_img2dataset",
        "runs",
    ]
    lines = [
        f"N={args.images} JPEGs of ~40 KB, latency {args.latency * 1000:.0f} ms, "
        f"{os.cpu_count()} cores; medians of {args.repeat} run(s); "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        "| " + " | ".join(c.replace("x_", "x ") for c in columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for entry in rows:
        lines.append(
            "| " + " | ".join("" if entry.get(c) is None else str(entry[c]) for c in columns) + " |"
        )
    if any(entry["design"] == PEER_DESIGN for entry in rows):
        lines += ["", *PEER_NOTES]
    return "\n".join(lines) + "\n"
