"""The prune flow: forget old snapshots and delete the images no kept snapshot references,
in each output folder (the ``prune-weekly`` deployment runs it)."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from flows.run_identity import name_if_unnamed, run_namer
from gallery_snapshot.config import PruneConfig
from gallery_snapshot.naming import prune_label
from gallery_snapshot.run_policy import RunPolicy, checked_out_dir
from gallery_snapshot.store import open_store
from tasks.store import prune_out_dir


@flow(
    name="gallery-prune",
    flow_run_name=run_namer(prune_label),
    on_failure=[name_if_unnamed(prune_label)],
    on_crashed=[name_if_unnamed(prune_label)],
)
def gallery_prune(config: PruneConfig) -> list[dict[str, Any]]:
    """Prune every folder of ``config.out_dirs`` by the same policy."""
    logger = get_run_logger()
    policy = RunPolicy.of_this_process()
    out_dirs = [checked_out_dir(out_dir, policy) for out_dir in config.out_dirs]  # all, first
    reports = []
    for out_dir in out_dirs:
        if not open_store(out_dir).has_snapshots():
            logger.info("%s holds no snapshots yet: nothing to prune", out_dir)
            continue
        report = prune_out_dir(
            out_dir,
            keep_last=config.keep_last,
            keep_within=config.keep_within_delta,
            dry_run=config.dry_run,
        )
        logger.info(
            "%s: kept %d snapshots, %s %d snapshots and %d stored files (%.1f MB)",
            out_dir,
            len(report["kept"]),
            "would remove" if config.dry_run else "removed",
            len(report["removed"]),
            report["files_removed"],
            report["bytes_removed"] / 1e6,
        )
        reports.append(report)
    return reports
