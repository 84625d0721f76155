"""The snapshot flow's Prefect events, for automations to react to what a snapshot found:

- ``gallery-snapshot.snapshot.completed``: a snapshot was recorded; its counts and its change
  counts in the payload;
- ``gallery-snapshot.snapshot.failed``: a snapshot could not complete; why, in the payload;
- ``gallery-snapshot.source.changed``: the share of the previous snapshot's images that
  vanished or changed passed the run's ``change_alert`` percentage.

Each has the source as its resource (``gallery-snapshot.source.<slug>``, the slug of the
run's name and tag) and the flow run and its deployment (when it has one) as related
resources."""

from __future__ import annotations

from typing import Any

from prefect.events import emit_event
from prefect.runtime import deployment, flow_run

from gallery_snapshot.changes import changed_percent
from gallery_snapshot.config import SnapshotConfig
from gallery_snapshot.models import Manifest
from gallery_snapshot.naming import source_slug

SNAPSHOT_COMPLETED = "gallery-snapshot.snapshot.completed"
SNAPSHOT_FAILED = "gallery-snapshot.snapshot.failed"
SOURCE_CHANGED = "gallery-snapshot.source.changed"
SOURCE_PREFIX = "gallery-snapshot.source."


def source_resource(config: SnapshotConfig) -> dict[str, str]:
    slug = source_slug(config)
    return {"prefect.resource.id": f"{SOURCE_PREFIX}{slug}", "prefect.resource.name": slug}


def run_resources() -> list[dict[str, str]]:
    """The flow run emitting, and its deployment when it has one."""
    related = [
        {
            "prefect.resource.id": f"prefect.flow-run.{flow_run.id}",
            "prefect.resource.role": "flow-run",
            "prefect.resource.name": str(flow_run.name),
        }
    ]
    if deployment.id:
        related.append(
            {
                "prefect.resource.id": f"prefect.deployment.{deployment.id}",
                "prefect.resource.role": "deployment",
                "prefect.resource.name": str(deployment.name),
            }
        )
    return related


def completed_events(
    config: SnapshotConfig, manifest: Manifest, location: str
) -> list[tuple[str, dict[str, Any]]]:
    """The events a recorded snapshot emits, as (name, payload): completed, and source
    changed when the share vanished or changed passed ``config.change_alert``."""
    changes = manifest.header.changes
    payload: dict[str, Any] = {
        "snapshot_id": manifest.snapshot_id,
        "manifest": location,
        "counts": manifest.counts.model_dump(),
        "changes": changes.counts.model_dump() if changes is not None else None,
        "previous": changes.previous if changes is not None else None,
    }
    events = [(SNAPSHOT_COMPLETED, payload)]
    percent = changed_percent(changes)
    if changes is not None and percent > config.change_alert:
        alert = {**payload, "changed_percent": round(percent, 1), "threshold": config.change_alert}
        events.append((SOURCE_CHANGED, alert))
    return events


def emit_completed(config: SnapshotConfig, manifest: Manifest, location: str) -> None:
    for name, payload in completed_events(config, manifest, location):
        emit_event(
            event=name,
            resource=source_resource(config),
            related=run_resources(),
            payload=payload,
        )


def emit_failed(config: SnapshotConfig, reason: str) -> None:
    emit_event(
        event=SNAPSHOT_FAILED,
        resource=source_resource(config),
        related=run_resources(),
        payload={"error": reason},
    )
