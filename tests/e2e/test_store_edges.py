"""The store's edges through the real command: what a served bucket tells browsers, and a run
whose every batch fails."""

from __future__ import annotations

import resource
import subprocess
from pathlib import Path

from gallery_snapshot.demo_gallery import DemoGallery, bulk_catalogue
from tests.support.bucket_store import manifests, store_objects
from tests.support.prefect_server import BIN, PrefectServer
from tests.support.s3_server import S3Bucket
from tests.support.snapshot_runs import run_args

# Enough open files for the command and Prefect to start, too few for 64 downloads at once
# (measured: with 32 workers, every batch failed from 20 to 50 files, the run passed at 70).
OPEN_FILES = 28


def content_types(bucket: S3Bucket) -> dict[str, str]:
    """The ``Content-Type`` of every object of the store, by key (relative to the store)."""
    client = bucket.server.s3_client()
    heads = {
        key: client.head_object(Bucket=bucket.name, Key=f"{bucket.prefix}/{key}")
        for key in store_objects(bucket)
    }
    return {key: str(head["ContentType"]) for key, head in heads.items()}


def test_pages_manifests_and_images_are_served_as_what_they_are(
    prefect_server: PrefectServer, s3_bucket: S3Bucket
) -> None:
    result = prefect_server.snapshot("demo", "--out", s3_bucket.url, env=s3_bucket.env)
    assert result.returncode == 0, result.stderr[-3000:]
    [manifest] = manifests(s3_bucket)
    snapshot = f"snapshots/{manifest['snapshot_id']}"
    types = content_types(s3_bucket)
    assert types[f"{snapshot}/index.html"] == "text/html; charset=utf-8"
    assert types[f"{snapshot}/manifest.json"] == "application/json"
    assert types[f"{snapshot}/contact-sheet.jpg"] == "image/jpeg"
    images = {key: kind for key, kind in types.items() if key.startswith("images/")}
    assert len(images) == 14
    assert set(images.values()) == {"image/jpeg"}
    # A quarantined download is no page, whatever its name or its bytes (one is HTML).
    quarantined = {key: kind for key, kind in types.items() if key.startswith("quarantine/")}
    assert len(quarantined) == 2
    assert set(quarantined.values()) == {"application/octet-stream"}


def test_a_run_whose_every_batch_fails_says_why_in_one_line(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    def few_open_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES, OPEN_FILES))

    with DemoGallery(bulk_catalogue(200, kilobytes=5)) as gallery:
        argv = run_args(gallery, tmp_path / "out", "--pages", "3", "--workers", "64")
        result = subprocess.run(
            [str(BIN / "gallery-snapshot"), *argv],
            env={**prefect_server.env, "IMGUR_CLIENT_ID": gallery.client_id},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            preexec_fn=few_open_files,
        )
    assert result.returncode == 1, result.stderr[-3000:]
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("gallery-snapshot: error: too many open files"), last_line
    assert "ulimit -n" in last_line and "No space left" not in last_line
    assert "Traceback" not in result.stderr and "UnfinishedRun" not in result.stderr
