"""The snapshot pipeline without Prefect: its steps in order on a real demo gallery on
loopback, real files and real Pillow; and the steps' options derived from the config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gallery_snapshot import pipeline
from gallery_snapshot.config import SnapshotConfig, SourceSpec
from gallery_snapshot.demo_gallery import DemoGallery, bulk_catalogue
from gallery_snapshot.http import Backoff
from gallery_snapshot.pipeline import (
    download_and_validate,
    known_images,
    plan_downloads,
    prepare,
    run_snapshot,
    step_options,
)
from gallery_snapshot.sources import list_links
from tests.support.demo import DEMO_COUNTS

NO_WAIT = Backoff(base=0, cap=0, jitter=0)


def demo_config(gallery: DemoGallery, out_dir: Path, **extra: object) -> SnapshotConfig:
    return SnapshotConfig(
        source=SourceSpec(api_url=gallery.api_url, pages=3),
        allowed_hosts=[gallery.image_host],
        out_dir=str(out_dir),
        **extra,  # type: ignore[arg-type]
    )


def image_requests(gallery: DemoGallery) -> list[str]:
    return [path for path, _ in gallery.state.requests if not path.startswith("/3/")]


def test_a_snapshot_then_a_rerun_that_requests_no_stored_image(
    gallery: DemoGallery, out_dir: Path
) -> None:
    config = demo_config(gallery, out_dir, workers=4, attempts=2)
    first = run_snapshot(config, snapshot_id="first", client_id=gallery.client_id, backoff=NO_WAIT)
    assert first.manifest.counts.model_dump() == DEMO_COUNTS
    assert Path(first.location).is_file() and Path(first.page).is_file()
    requested = len(image_requests(gallery))

    second = run_snapshot(config, snapshot_id="second", client_id=gallery.client_id)
    assert second.manifest.counts.model_dump() == {**DEMO_COUNTS, "downloaded": 0, "reused": 14}
    # Only the images the first run could not store are asked for again.
    again = image_requests(gallery)[requested:]
    stored = {image.url for image in first.manifest.images() if image.status == "downloaded"}
    assert again and not any(url.endswith(path) for url in stored for path in again)


def test_batches_are_validated_into_records_in_link_order(tmp_path: Path) -> None:
    with DemoGallery(bulk_catalogue(40, kilobytes=2)) as gallery:
        config = demo_config(gallery, tmp_path, workers=2)
        links = list_links(config.source, client_id=gallery.client_id).links
        planned = plan_downloads(links, config)
        assert len(planned.batches) > 3  # more batches than are in flight at once
        assert [link for batch in planned.batches for link in batch] == links
        store = prepare(config.out_dir)
        options = step_options(config, out_dir=store.name, snapshot_id="s", threads=2)
        records = download_and_validate(
            planned.batches, options, known=known_images(store, links), in_flight=2
        )
    assert [record.rank for record in records] == [link.rank for link in links]
    assert {record.status for record in records} == {"downloaded"}
    assert len(list((tmp_path / "images").rglob("*.jpg"))) == 40


def test_step_options_come_from_the_config_alone() -> None:
    config = SnapshotConfig(
        formats=["png", "jpeg"],
        allowed_hosts=["img.example"],
        timeout=7,
        deadline=11,
        max_bytes=1234,
        max_pixels=5678,
        attempts=4,
    )
    options = step_options(config, out_dir="/store", snapshot_id="s1", threads=9)
    download, validation = options.download, options.validation
    assert (download.out_dir, download.snapshot_id, download.threads) == ("/store", "s1", 9)
    assert download.allowed_hosts == frozenset({"img.example"})
    assert (download.timeout, download.deadline) == (7, 11)
    assert (download.max_bytes, download.attempts) == (1234, 4)
    assert validation.formats == ("PNG", "JPEG")
    assert (validation.max_pixels, validation.deadline) == (5678, 11)
    assert (validation.out_dir, validation.snapshot_id) == ("/store", "s1")


def test_the_pipeline_runs_without_importing_prefect() -> None:
    code = (
        "import sys, gallery_snapshot.pipeline;"
        "sys.exit(any(m.split('.')[0] in ('prefect', 'flows', 'tasks') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_validating_on_the_cores_records_what_validating_in_place_records(
    gallery: DemoGallery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo gallery's broken, gone, oversized and wrong-format images too: the pool
    processes judge and store each one as the caller's own thread does."""
    records = {}
    for processes in (2, 0):
        monkeypatch.setattr(pipeline, "validation_processes", lambda **_: processes)  # noqa: B023
        config = demo_config(gallery, tmp_path / str(processes), workers=4, attempts=2)
        recorded = run_snapshot(config, snapshot_id="s", client_id=gallery.client_id)
        records[processes] = [image.model_dump() for image in recorded.manifest.images()]
        stored = tmp_path / str(processes) / "images"
        records[processes].append(sorted(p.name for p in stored.rglob("*") if p.is_file()))
    assert records[2] == records[0]
    assert len(records[0][-1]) == DEMO_COUNTS["downloaded"]
