"""The task that leaves a snapshot's artifacts in Prefect: a summary table, a markdown report
and a contact sheet, keyed per deployment and source so the Artifacts page keeps their history."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from gallery_snapshot.naming import slug
from gallery_snapshot.report import (
    contact_sheet_markdown,
    markdown_report,
    previous_manifest,
    summary_rows,
    write_contact_sheet,
)


def artifact_key(*parts: str) -> str:
    return slug("-".join(parts))


# Not cached: the artifacts belong to the attempt that completes the run (a retry publishes
# them again, with its own timing).
@task(name="publish_report", cache_policy=NO_CACHE, retries=1)
def publish_report(
    *, out_dir: str, manifest: dict[str, Any], seconds: float, key_prefix: str
) -> str | None:
    """Create the artifacts of the snapshot ``manifest`` (as written); return the contact
    sheet's path (None when nothing was stored)."""
    snapshot_id = manifest["snapshot_id"]
    create_table_artifact(
        summary_rows(manifest, seconds=seconds),
        key=artifact_key(key_prefix, "summary"),
        description=f"Counts of snapshot {snapshot_id}",
    )
    create_markdown_artifact(
        markdown_report(manifest, previous_manifest(out_dir, manifest)),
        key=artifact_key(key_prefix, "report"),
        description=f"Problems and changes of snapshot {snapshot_id}",
    )
    sheet = write_contact_sheet(out_dir, manifest)
    if sheet is None:
        return None
    create_markdown_artifact(
        contact_sheet_markdown(sheet, snapshot_id),
        key=artifact_key(key_prefix, "contact-sheet"),
        description=f"Thumbnails of snapshot {snapshot_id}",
    )
    return sheet.location
