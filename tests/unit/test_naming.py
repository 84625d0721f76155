"""Names and keys made of what is fixed when a run is created."""

from datetime import UTC, datetime, timedelta, timezone

from prefect._internal.uuid7 import uuid7

from gallery_snapshot.config import PruneConfig, SnapshotConfig, SourceSpec
from gallery_snapshot.naming import (
    artifact_prefix,
    prune_label,
    run_name,
    run_suffix,
    snapshot_id,
    snapshot_label,
    source_slug,
)


def test_runs_the_scheduler_creates_together_get_different_suffixes() -> None:
    # Scheduled runs have UUIDv7 ids: their first hex digits are a shared timestamp.
    ids = [uuid7() for _ in range(50)]
    assert len({run_suffix(run_id) for run_id in ids}) == len(ids)


def test_names_and_snapshot_ids_are_in_utc_whatever_the_server_zone() -> None:
    scheduled = datetime(2026, 11, 24, 20, 5, 7, tzinfo=timezone(timedelta(hours=1)))
    run_id = "3fa2c1d0-0000-4000-8000-00000000abcd"
    assert snapshot_id(scheduled, run_id) == "20261124T190507Z-00abcd"
    assert run_name("demo", scheduled, run_id) == "demo-2026-11-24-1905-00abcd"
    assert snapshot_id(scheduled.astimezone(UTC), run_id) == snapshot_id(scheduled, run_id)


def test_source_slugs_hold_only_what_an_artifact_key_may() -> None:
    def slug_of(**source: object) -> str:
        return source_slug(SnapshotConfig(source=SourceSpec.model_validate(source)))

    assert slug_of() == "gallery-hot-viral-day"
    assert slug_of(kind="subreddit", subreddit="Earth_Porn") == "r-earth-porn"
    assert slug_of(kind="urls", urls_file="/srv/lists/Cats & Dogs.txt") == "urls-cats-dogs"
    assert slug_of(kind="urls", urls_file="-") == "urls-stdin"
    assert slug_of(kind="tag", tag="x" * 100) == "tag-" + "x" * 56
    assert source_slug(SnapshotConfig(demo_gallery=True)) == "demo"


def test_labels_of_parameters_as_sent() -> None:
    assert snapshot_label({"source": {"kind": "album", "album": "AbC"}}) == "album-abc"
    assert snapshot_label({"source": {"kind": "album"}}) == "invalid-config"
    assert snapshot_label(None) == "gallery-hot-viral-day"
    assert prune_label(PruneConfig(out_dirs=["snapshots/viral", "s3://b/top/"], keep_last=1)) == (
        "prune-viral-top"
    )
    assert prune_label({"out_dirs": []}) == "invalid-config"


def test_artifact_prefixes_name_the_deployment_and_the_source_once() -> None:
    assert artifact_prefix(["viral-hourly", "r-pics"]) == "viral-hourly-r-pics"
    assert artifact_prefix(["demo", "demo"]) == "demo"
    assert artifact_prefix([None, "gallery-hot-viral-day"]) == "gallery-hot-viral-day"
