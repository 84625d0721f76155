"""Report artifacts are found, not listed: each is one module of ``gallery_snapshot.reports``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import gallery_snapshot.reports as reports
from gallery_snapshot.reports import Markdown, ReportInput, report_artifacts
from tests.support.manifests import with_statuses


@pytest.fixture
def extra_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A module ``gallery_snapshot.reports.extra`` declaring an artifact, in a folder of the
    package's path (the source tree is left alone)."""
    (tmp_path / "extra.py").write_text(
        "from gallery_snapshot.reports import Markdown, ReportArtifact\n"
        "ARTIFACT = ReportArtifact(\n"
        "    key='extra',\n"
        "    description='Extra of snapshot {snapshot_id}',\n"
        "    render=lambda report: Markdown(f'{report.manifest.counts.gone} gone'),\n"
        ")\n"
    )
    monkeypatch.setattr(reports, "__path__", [*reports.__path__, str(tmp_path)])
    yield "gallery_snapshot.reports.extra"
    sys.modules.pop("gallery_snapshot.reports.extra", None)


def test_every_artifact_module_is_registered() -> None:
    assert {artifact.key for artifact in report_artifacts()} == {
        "summary",
        "report",
        "contact-sheet",
        "trend",
    }


def test_a_new_artifact_is_one_module(extra_module: str, tmp_path: Path) -> None:
    [extra] = [artifact for artifact in report_artifacts() if artifact.key == "extra"]
    manifest = with_statuses("s1", {"a": "gone", "b": "gone"})
    report = ReportInput(out_dir=str(tmp_path), manifest=manifest, seconds=1.0)
    assert extra.render(report) == Markdown("2 gone")
