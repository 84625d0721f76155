"""The report task publishes every registered report artifact, under its own key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

import tasks.report
from gallery_snapshot.reports import ReportArtifact, ReportInput, Table, report_artifacts
from tests.support.manifests import with_statuses


def test_the_registry_drives_publication(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def gone(report: ReportInput) -> Table:
        return Table([{"gone": image.id} for image in report.manifest.images()])

    extra = ReportArtifact(key="gone", description="Gone of snapshot {snapshot_id}", render=gone)
    monkeypatch.setattr(tasks.report, "report_artifacts", lambda: [*report_artifacts(), extra])
    manifest = with_statuses("20260101T000000Z-aaaaaa", {"a": "gone", "b": "failed"})
    tasks.report.publish_report(
        out_dir=str(tmp_path), manifest=manifest, seconds=1.0, key_prefix="registry-test"
    )
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_="registry-test-%"))
        )
    published = {artifact.key: artifact for artifact in artifacts}
    # Nothing stored: the contact sheet has nothing to show, and is left out.
    assert set(published) == {"registry-test-summary", "registry-test-report", "registry-test-gone"}
    assert published["registry-test-gone"].description == "Gone of snapshot 20260101T000000Z-aaaaaa"
    assert json.loads(str(published["registry-test-gone"].data)) == [{"gone": "a"}, {"gone": "b"}]
