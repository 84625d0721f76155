"""The task that leaves a snapshot's artifacts in Prefect: every report artifact of
``gallery_snapshot.reports`` (a summary table, a markdown report, a contact sheet...), keyed
per deployment and source so the Artifacts page keeps their history."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from gallery_snapshot.models import Manifest
from gallery_snapshot.naming import slug
from gallery_snapshot.reports import Markdown, ReportInput, report_artifacts


def artifact_key(*parts: str) -> str:
    return slug("-".join(parts))


# Not cached: the artifacts belong to the attempt that completes the run (a retry publishes
# them again, with its own timing).
@task(name="publish_report", cache_policy=NO_CACHE, retries=1)
def publish_report(
    *, out_dir: str, manifest: Manifest, seconds: float, key_prefix: str
) -> list[str]:
    """Create every report artifact of the snapshot ``manifest`` (as written); return where
    the artifacts wrote files of their own into the store (the contact sheet)."""
    report = ReportInput(out_dir=out_dir, manifest=manifest, seconds=seconds)
    written = []
    for artifact in report_artifacts():
        rendered = artifact.render(report)
        if rendered is None:
            continue
        key = artifact_key(key_prefix, artifact.key)
        description = artifact.description.format(snapshot_id=manifest.snapshot_id)
        if isinstance(rendered, Markdown):
            create_markdown_artifact(rendered.text, key=key, description=description)
            written += [rendered.written] if rendered.written else []
        else:
            create_table_artifact(rendered.rows, key=key, description=description)
    return written
