"""img2dataset as a peer in the benchmark: installed on first use into its own virtual
environment (``benchmarks/.img2dataset-venv``, git-ignored; not a project dependency), then run
on the same links from the same demo gallery as the project.

It runs download-only: ``--resize_mode no --disable_all_reencoding True --extract_exif False``,
so the stored files are the served bytes. In that mode img2dataset validates nothing: any body
answered with HTTP 200 is written (an HTML error page becomes a ``.jpg``); it does hash every
image (sha256, its default ``compute_hash``). Only when it re-encodes (``resize_mode`` other than
``no``, or without ``disable_all_reencoding``) does it decode, with OpenCV at full resolution,
and then it stores re-encoded JPEGs, not the served bytes. The project decodes every image with
Pillow and stores the served bytes.

Concurrency C is split like the project's process runner: ``--processes_count 2`` (one per
core) with ``--thread_count C/2`` and ``--number_sample_per_shard N/2``, so both processes get a
shard and C downloads are in flight in all. (The default 10,000 images per shard would leave
one process idle at N=2,000; with ``--thread_count C`` and two shards, 2C would be in flight.)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VENV = HERE / ".img2dataset-venv"
REQUIREMENTS = HERE / "img2dataset-requirements.txt"
DRIVER = HERE / "img2dataset_driver.py"
VERSION = "1.47.0"
PROCESSES = 2


def _python() -> Path:
    return VENV / "bin" / "python"


def ensure_installed() -> Path:
    """Install img2dataset (pinned) into its own venv unless it is there already; return its
    interpreter. The stamp holds the requirements' hash, so a changed pin reinstalls."""
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    stamp = VENV / ".installed"
    if stamp.is_file() and stamp.read_text().strip() == wanted and _python().is_file():
        return _python()
    print(f"installing img2dataset {VERSION} into {VENV} (first use, about a minute)", flush=True)
    shutil.rmtree(VENV, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = subprocess.run(
        [
            str(_python()),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            str(REQUIREMENTS),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if pip.returncode != 0:
        raise RuntimeError(f"cannot install img2dataset {VERSION}: {pip.stderr[-3000:]}")
    check = subprocess.run(
        [
            str(_python()),
            "-c",
            "import img2dataset, importlib.metadata as m; print(m.version('img2dataset'))",
        ],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"},
    )
    if check.stdout.strip() != VERSION:
        raise RuntimeError(f"expected img2dataset {VERSION}, got {check.stdout.strip()}")
    stamp.write_text(wanted + "\n")
    return _python()


def download_args(
    url_list: Path, output_folder: Path, concurrency: int, count: int
) -> dict[str, Any]:
    """img2dataset's ``download()`` keyword arguments for ``concurrency`` downloads in flight."""
    return {
        "url_list": str(url_list),
        "input_format": "txt",
        "output_format": "files",
        "output_folder": str(output_folder),
        "resize_mode": "no",
        "disable_all_reencoding": True,  # write the served bytes: no decode, no re-encode
        "extract_exif": False,  # only download
        "processes_count": PROCESSES,
        "thread_count": max(1, math.ceil(concurrency / PROCESSES)),
        "number_sample_per_shard": max(1, math.ceil(count / PROCESSES)),
        "timeout": 30,  # the project's --timeout
        "retries": 2,  # the project's 3 attempts
    }


def run_img2dataset(
    python: Path, links: list[str], work: Path, concurrency: int, env: dict[str, str]
) -> dict[str, Any]:
    """One img2dataset run into a fresh folder under ``work``; its measurements, plus the wall
    time of the whole command (interpreter start, imports, download) as ``process_s``."""
    folder = work / f"img2dataset-{concurrency}-{time.monotonic_ns()}"
    folder.mkdir(parents=True)
    url_list = folder / "links.txt"
    url_list.write_text("\n".join(links) + "\n")
    kwargs = download_args(url_list, folder / "out", concurrency, len(links))
    started = time.perf_counter()
    done = subprocess.run(
        [str(python), str(DRIVER), json.dumps(kwargs)],
        env={**env, "NO_ALBUMENTATIONS_UPDATE": "1", "WANDB_MODE": "disabled"},
        capture_output=True,
        text=True,
        check=False,
        cwd=folder,
    )
    process_s = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"img2dataset failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_s"] = process_s
    if result["successes"] != len(links):
        raise RuntimeError(f"img2dataset stored {result['successes']} of {len(links)}: {result}")
    shutil.rmtree(folder, ignore_errors=True)
    return result
