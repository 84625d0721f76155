"""The task that prunes a store."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from gallery_snapshot.store.maintenance import prune_store


@task(name="prune_store", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=30)
def prune_out_dir(
    out_dir: str, *, keep_last: int | None, keep_within: timedelta | None, dry_run: bool
) -> dict[str, Any]:
    """Prune one output folder; return what was kept and removed."""
    report = prune_store(out_dir, keep_last=keep_last, keep_within=keep_within, dry_run=dry_run)
    return {"out_dir": out_dir, **vars(report)}
