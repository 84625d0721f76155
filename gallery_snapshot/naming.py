"""Names of a run and of what it writes, made only of what is fixed when the run is created:
its source (the parameters), its scheduled start and its id. A retry of the same flow run
(Prefect's Retry keeps the run's id) gets the same name and writes the same snapshot."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from pydantic import ValidationError

from gallery_snapshot.config import PruneConfig, SnapshotConfig

SLUG_MAX = 60
INVALID = "invalid-config"


def slug(text: str) -> str:
    """Lower-case letters, digits and dashes: all a Prefect artifact key may hold."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")


def source_slug(config: SnapshotConfig) -> str:
    """``gallery-hot-viral-day``, ``r-earthporn``, ``urls-links``, ``demo``: the source in a
    run's name, its tag and its artifacts' keys (listing text never gets further than this)."""
    label = "demo" if config.demo_gallery else config.source.describe()
    return slug(label)[:SLUG_MAX].strip("-") or "source"


def source_tag(config: SnapshotConfig) -> str:
    return f"source:{source_slug(config)}"


def prune_slug(config: PruneConfig) -> str:
    """``prune-viral-top-earthporn``: the last part of each folder it prunes."""
    names = "-".join(slug(PurePosixPath(out_dir.rstrip("/")).name) for out_dir in config.out_dirs)
    return f"prune-{names}"[:SLUG_MAX].strip("-")


def run_suffix(run_id: Any) -> str:
    """The last six hex digits of a run's id: random both in the UUIDv4 ids of runs a client
    creates and in the UUIDv7 ids of scheduled runs, whose first digits are a timestamp that
    all the runs the scheduler creates together share."""
    return str(run_id).replace("-", "")[-6:]


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def snapshot_id(scheduled: datetime, run_id: Any) -> str:
    """``20261124T190500Z-3fa2c1``: sorts by time, and a retry of the run writes the same."""
    return f"{_utc(scheduled):%Y%m%dT%H%M%SZ}-{run_suffix(run_id)}"


def run_name(label: str, scheduled: datetime, run_id: Any) -> str:
    """``gallery-hot-viral-day-2026-11-24-1905-3fa2c1``."""
    return f"{label}-{_utc(scheduled):%Y-%m-%d-%H%M}-{run_suffix(run_id)}"


def snapshot_label(config: Any) -> str:
    """The source slug of a snapshot flow's ``config`` parameter, validated or as sent
    (``invalid-config`` when it is not one)."""
    try:
        return source_slug(SnapshotConfig.model_validate(config or {}))
    except ValidationError:
        return INVALID


def prune_label(config: Any) -> str:
    """As ``snapshot_label``, for the prune flow's parameter."""
    try:
        return prune_slug(PruneConfig.model_validate(config or {}))
    except ValidationError:
        return INVALID


def artifact_prefix(parts: Iterable[str | None]) -> str:
    """An artifact key prefix of ``parts`` (a deployment's name, a source slug), each once."""
    return slug("-".join(dict.fromkeys(part for part in parts if part)))
