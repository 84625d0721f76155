"""verify and prune on an object store (obstore's ``file://`` backend), through the CLI."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from gallery_snapshot.models import ImageRecord
from gallery_snapshot.store import maintenance, stored_relpath
from gallery_snapshot.store import objects as object_store
from gallery_snapshot.store.objects import PRUNE_LOCK, ObjectStore
from tests.support.command_line import cli
from tests.support.images import image_bytes
from tests.support.object_stores import record_snapshot


def keys(store: ObjectStore, prefix: str) -> set[str]:
    return {info.key for info in store.listing(prefix)}


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    return ObjectStore(f"file://{tmp_path}/bucket/snaps")


def test_prune_keeps_what_kept_snapshots_reference_and_deletes_the_rest(
    store: ObjectStore, capsys: pytest.CaptureFixture[str]
) -> None:
    record_snapshot(store, "01-old", [1, 2, 3])
    record_snapshot(store, "02-new", [1, 2])
    only_old = stored_relpath(hashlib.sha256(image_bytes(3)).hexdigest(), "JPEG")
    before = {key for prefix in ("images/", "index/", "snapshots/") for key in keys(store, prefix)}

    assert cli("prune", "--out", store.url, "--keep-last", "1", "--dry-run") == 0
    assert "would remove 1 snapshots and 1 stored files" in capsys.readouterr().out
    after_dry_run = {
        k for prefix in ("images/", "index/", "snapshots/") for k in keys(store, prefix)
    }
    assert after_dry_run == before and not keys(store, "locks/")

    assert cli("prune", "--out", store.url, "--keep-last", "1") == 0
    assert "removed 1 snapshots and 1 stored files" in capsys.readouterr().out
    assert only_old not in keys(store, "images/") and len(keys(store, "images/")) == 2
    assert len(keys(store, "index/")) == 2  # the URL of the deleted image is forgotten
    assert not any(key.startswith("snapshots/01-old/") for key in keys(store, "snapshots/"))
    assert not keys(store, "quarantine/01-old/") and keys(store, "quarantine/02-new/")
    assert not keys(store, "locks/")
    assert cli("verify", "--out", store.url) == 0
    assert "verified 2 stored files referenced by 1 snapshots" in capsys.readouterr().out


def test_verify_names_missing_and_damaged_objects(
    store: ObjectStore, capsys: pytest.CaptureFixture[str]
) -> None:
    record_snapshot(store, "01-first", [1, 2, 3])
    first, second, _ = (
        stored_relpath(hashlib.sha256(image_bytes(seed)).hexdigest(), "JPEG") for seed in (1, 2, 3)
    )
    store.delete([first])
    store.put(second, b"rot")
    store.put("snapshots/02-junk/manifest.json", b'["not a manifest"]')
    assert cli("verify", "--out", store.url) == 1
    out = capsys.readouterr().out
    assert f"{first} is missing (snapshot 01-first)" in out
    assert f"{second} has 3 bytes, not {len(image_bytes(2))}" in out
    assert "02-junk/manifest.json is not a manifest" in out
    assert "3 problem(s)" in out


def test_prune_refuses_while_a_snapshot_runs_and_changes_nothing(
    store: ObjectStore, capsys: pytest.CaptureFixture[str]
) -> None:
    record_snapshot(store, "01-old", [1])
    record_snapshot(store, "02-new", [2])
    with store.snapshot_lock("03-running"):
        assert cli("prune", "--out", store.url, "--keep-last", "1") == 1
        assert "03-running" in capsys.readouterr().err
        assert len(keys(store, "images/")) == 2
    assert keys(store, "locks/") == set()


def test_prune_refuses_a_store_with_an_unreadable_manifest(
    store: ObjectStore, capsys: pytest.CaptureFixture[str]
) -> None:
    record_snapshot(store, "01-old", [1])
    record_snapshot(store, "02-new", [2])
    store.put("snapshots/03-broken/manifest.json", b"{")
    assert cli("prune", "--out", store.url, "--keep-last", "1") == 1
    assert "03-broken/manifest.json is not a manifest" in capsys.readouterr().err
    assert len(keys(store, "images/")) == 2 and not keys(store, "locks/")


def test_prune_deletes_only_index_entries_of_its_own_shape(
    store: ObjectStore, capsys: pytest.CaptureFixture[str]
) -> None:
    record_snapshot(store, "01-old", [1, 3])
    record_snapshot(store, "02-new", [1])
    store.put("index/README.txt", b"someone else's")
    store.put("index/site/page.html", b"<html>")
    assert cli("prune", "--out", store.url, "--keep-last", "1") == 0
    assert {"index/README.txt", "index/site/page.html"} <= keys(store, "index/")
    assert len(keys(store, "index/")) == 3  # theirs, and the kept image's URL


def test_verify_of_an_empty_prefix_is_a_failure_not_all_hold(
    store: ObjectStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("verify", "--out", f"{store.url}/typo") == 1
    assert "holds no snapshots" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["verify", "prune"])
def test_a_url_of_no_supported_store_is_one_line_and_exit_2(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = ["--keep-last", "1"] if command == "prune" else []
    assert cli(command, "--out", "http://bucket/prefix", *extra) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "http:// is not a store this tool writes to" in err


def seed_path(seed: int) -> str:
    return stored_relpath(hashlib.sha256(image_bytes(seed)).hexdigest(), "JPEG")


def test_a_prune_stalled_while_a_snapshot_started_deletes_nothing(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    record_snapshot(store, "01-old", [1, 3])
    record_snapshot(store, "02-new", [1])
    real_plan = maintenance.plan_prune

    def plan_then_stall(*args: Any, **kwargs: Any) -> set[str]:
        planned = real_plan(*args, **kwargs)
        # Meanwhile (the prune's lock lapsed) a snapshot started: its lock is live.
        store.put(store.snapshot_lock_key("03-started"), b"")
        return planned

    monkeypatch.setattr(maintenance, "plan_prune", plan_then_stall)
    assert cli("prune", "--out", store.url, "--keep-last", "1") == 1
    assert "03-started" in capsys.readouterr().err
    assert seed_path(3) in keys(store, "images/")
    assert "snapshots/01-old/manifest.json" in keys(store, "snapshots/")


def test_a_snapshot_finished_during_a_prune_keeps_its_images(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_snapshot(store, "01-old", [1, 3])
    record_snapshot(store, "02-new", [1])
    real_plan = maintenance.plan_prune

    def plan_then_a_snapshot_finishes(*args: Any, **kwargs: Any) -> set[str]:
        planned = real_plan(*args, **kwargs)
        record_snapshot(store, "03-meanwhile", [3])  # reuses the image only 01-old named
        return planned

    monkeypatch.setattr(maintenance, "plan_prune", plan_then_a_snapshot_finishes)
    assert cli("prune", "--out", store.url, "--keep-last", "1") == 0
    assert seed_path(3) in keys(store, "images/")
    assert cli("verify", "--out", store.url) == 0


def test_a_snapshot_never_records_an_image_a_prune_deleted(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_snapshot(store, "01-old", [1, 2])
    records = [
        ImageRecord(
            url=f"http://h/{seed}.jpg",
            id=str(seed),
            rank=seed,
            status="reused",
            path=seed_path(seed),
            sha256=hashlib.sha256(image_bytes(seed)).hexdigest(),
            bytes=len(image_bytes(seed)),
        )
        for seed in (1, 2)
    ]
    store.delete([seed_path(2)])  # a prune ran while this snapshot was stalled
    store.put(PRUNE_LOCK, b"")  # and is still finishing
    monkeypatch.setattr(object_store, "PRUNE_POLL_SECONDS", 0.05)
    ended = threading.Timer(0.3, store.delete, args=([PRUNE_LOCK],))
    ended.start()
    settled = store.settle("03-stalled", records)
    ended.join()
    assert not store.prune_running()
    assert settled[0] == records[0]
    assert settled[1].status == "failed" and settled[1].path is None
    assert "deleted by a prune" in str(settled[1].error)


def test_lock_ages_are_counted_on_the_stores_clock(store: ObjectStore, tmp_path: Path) -> None:
    """A machine whose clock runs 20 minutes ahead still sees a 5-minute-old lock as live."""
    store.put(store.snapshot_lock_key("live"), b"")
    store.put(PRUNE_LOCK, b"")
    for key, minutes in ((store.snapshot_lock_key("live"), 25), (PRUNE_LOCK, 20)):
        then = time.time() - minutes * 60
        os.utime(tmp_path / "bucket" / "snaps" / key, (then, then))
    assert store.running_snapshots() == []  # by this machine's clock
    assert store.running_snapshots(reference=PRUNE_LOCK) == [store.snapshot_lock_key("live")]
