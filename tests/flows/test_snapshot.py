"""The flow against the demo gallery, under one Prefect test harness."""

from pathlib import Path
from typing import Any

import pytest

import gallery_snapshot.manifest as manifest_module
import tasks.report
from flows.snapshot import gallery_snapshot
from gallery_snapshot.config import SnapshotConfig, SourceSpec
from gallery_snapshot.demo_gallery import DemoGallery
from gallery_snapshot.errors import ApiError
from gallery_snapshot.models import Manifest
from tests.support.demo import DEMO_COUNTS
from tests.support.manifests import read_document


def manifest_of(summary: dict[str, Any]) -> dict[str, Any]:
    return read_document(summary["manifest"])


def stored_files(out: Path) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in (out / "images").rglob("*") if p.is_file())


@pytest.mark.parametrize("runner", ["threads", "processes"])
def test_demo_snapshot_then_a_rerun_that_reuses_everything(tmp_path: Path, runner: str) -> None:
    config = SnapshotConfig(
        demo_gallery=True,
        source=SourceSpec(pages=3),
        out_dir=str(tmp_path),
        runner=runner,
        workers=4,
        attempts=2,
    )
    first = manifest_of(gallery_snapshot(config))
    assert first["counts"] == DEMO_COUNTS
    by_id = {image["id"]: image for image in first["images"]}
    assert by_id["BadHtml"]["status"] == by_id["BadTrnc"]["status"] == "invalid"
    assert by_id["Deleted"]["status"] == by_id["Missing"]["status"] == "gone"
    assert by_id["Failing"]["status"] == "failed"
    good = by_id["Jpg001"]
    assert (good["width"], good["height"], good["format"]) == (320, 240, "JPEG")
    assert len(first["images"]) == len({image["url"] for image in first["images"]})
    assert len(stored_files(tmp_path)) == 14
    quarantined = (tmp_path / "quarantine").rglob("*.jpg")
    assert sorted(p.name.split("-", 1)[1] for p in quarantined) == ["BadHtml.jpg", "BadTrnc.jpg"]
    assert list((tmp_path / ".staging").iterdir()) == []

    second = manifest_of(gallery_snapshot(config))
    assert second["counts"] == {**DEMO_COUNTS, "downloaded": 0, "reused": 14}
    assert second["snapshot_id"] != first["snapshot_id"]
    reused = {image["id"]: image for image in second["images"] if image["status"] == "reused"}
    for image_id, image in reused.items():
        assert image["sha256"] == by_id[image_id]["sha256"]
        assert image["path"] == by_id[image_id]["path"]


def test_rejected_client_id_fails_the_flow_after_one_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMGUR_CLIENT_ID", "not-the-demo-id")
    with DemoGallery() as gallery:
        config = SnapshotConfig(
            source=SourceSpec(api_url=gallery.api_url),
            allowed_hosts=[gallery.image_host],
            out_dir=str(tmp_path),
        )
        state = gallery_snapshot(config, return_state=True)
        assert state.is_failed()
        error = state.result(raise_on_failure=False)
        assert isinstance(error, ApiError) and "Invalid client_id" in str(error)
        assert gallery.state.requests_for("/3/gallery/hot/viral/day/0") == [403]
    assert "not-the-demo-id" not in str(error)
    assert list((tmp_path / "images").iterdir()) == []


def test_the_report_is_made_without_reading_the_new_manifest_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # At 100,000 images the manifest is ~41 MB: reading it back cost the report ~150 MB.
    parsed: list[str] = []
    real_parse = manifest_module.parse_manifest

    def spied(data: bytes, **kwargs: Any) -> Manifest:
        manifest = real_parse(data, **kwargs)
        parsed.append(manifest.snapshot_id)
        return manifest

    monkeypatch.setattr(manifest_module, "parse_manifest", spied)
    config = SnapshotConfig(demo_gallery=True, out_dir=str(tmp_path), workers=4, attempts=2)
    first = gallery_snapshot(config)
    second = gallery_snapshot(config)
    # The second run's report reads the first manifest (its changes since), never its own.
    assert parsed == [first["snapshot_id"]]
    assert second["counts"]["downloaded"] == 0 and second["counts"]["reused"] > 0


def test_a_report_that_cannot_be_published_leaves_the_snapshot_completed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The manifest is written before the report: the snapshot is whole, so its run (and the
    # command's exit status) says so, and the report's failure is a warning in its logs.
    def artifact_api_down(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("artifact API down")

    monkeypatch.setattr(tasks.report, "create_table_artifact", artifact_api_down)
    config = SnapshotConfig(demo_gallery=True, out_dir=str(tmp_path), workers=4, attempts=2)
    with caplog.at_level("WARNING", logger="prefect.flow_runs"):
        state = gallery_snapshot(config, return_state=True)
    assert state.is_completed()
    summary = state.result()
    assert manifest_of(summary)["counts"] == summary["counts"]
    [warning] = [r.getMessage() for r in caplog.records if "report" in r.getMessage()]
    assert "artifact API down" in warning and summary["manifest"] in warning
