"""verify and prune on real folders, through the CLI's own entry point."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from gallery_snapshot.config import parse_duration
from gallery_snapshot.models import ManifestHeader
from gallery_snapshot.store.maintenance import prune_store, snapshots_to_keep
from tests.support.command_line import cli
from tests.support.images import image_bytes
from tests.support.manifests import manifest_of
from tests.support.stores import record_snapshot, store_image


def test_verify_names_each_problem_and_the_snapshots_referencing_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    record_snapshot(out, "01-first", [1, 2, 3, 4])
    record_snapshot(out, "02-second", [1, 2])
    assert cli("verify", "--out", str(out)) == 0
    assert "verified 4 stored files referenced by 2 snapshots" in capsys.readouterr().out

    paths = {seed: store_image(out, seed)[0] for seed in (1, 2, 3)}
    (out / paths[1]).unlink()
    damaged = out / paths[2]
    damaged.chmod(0o644)
    damaged.write_bytes(b"rot")
    secret = tmp_path / "secret"
    secret.write_bytes(image_bytes(3))
    (out / paths[3]).unlink()
    (out / paths[3]).symlink_to(secret)
    (out / "snapshots" / "03-junk").mkdir()
    (out / "snapshots" / "03-junk" / "manifest.json").write_text('["not", "a", "manifest"]')

    assert cli("verify", "--out", str(out)) == 1
    lines = capsys.readouterr().out.splitlines()
    assert f"{paths[1]} is missing (snapshot 01-first, 02-second)" in lines
    assert any(line.startswith(f"{paths[2]} has 3 bytes, not ") for line in lines)
    assert f"{paths[3]} is a symbolic link (snapshot 01-first)" in lines
    assert any("03-junk/manifest.json is not a manifest" in line for line in lines)
    assert lines[-1].endswith("4 problem(s)")


def test_verify_refuses_a_manifest_path_outside_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    record_snapshot(out, "01-first", [1])
    path = out / "snapshots" / "01-first" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["images"][0]["path"] = "../../etc/passwd"
    path.write_text(json.dumps(manifest))
    assert cli("verify", "--out", str(out)) == 1
    assert "'../../etc/passwd' is not the stored path" in capsys.readouterr().out


def test_prune_keeps_the_latest_per_source_and_sweeps_the_rest(tmp_path: Path) -> None:
    out = tmp_path / "out"
    record_snapshot(out, "01-a", [1, 2], source="a")
    record_snapshot(out, "02-a", [2, 3], source="a")
    record_snapshot(out, "03-b", [4], source="b")
    dry = prune_store(str(out), keep_last=1, dry_run=True)
    assert (dry.removed, dry.files_removed) == (["01-a"], 1)
    assert (out / "snapshots" / "01-a" / "manifest.json").exists()

    report = prune_store(str(out), keep_last=1)
    assert report.kept == ["02-a", "03-b"] and report.removed == ["01-a"]
    assert not (out / "snapshots" / "01-a").exists()
    assert report.files_removed == 1 and report.urls_forgotten == 0
    assert cli("verify", "--out", str(out)) == 0


def test_keep_within_counts_from_each_sources_latest_snapshot() -> None:
    def header(snapshot_id: str, day: int, source: str) -> ManifestHeader:
        started = f"2026-11-{day:02d}T00:00:00+00:00"
        return manifest_of(snapshot_id, [], source={"s": source}, started=started).header

    headers = [header("a1", 1, "a"), header("a2", 9, "a"), header("b1", 2, "b")]
    keep = snapshots_to_keep(headers, keep_last=None, keep_within=timedelta(days=7))
    assert keep == {"a2", "b1"}
    assert snapshots_to_keep(headers, keep_last=2, keep_within=None) == {"a1", "a2", "b1"}


def test_prune_waits_for_a_running_snapshot(tmp_path: Path) -> None:
    out = tmp_path / "out"
    record_snapshot(out, "01-a", [1])
    record_snapshot(out, "02-a", [2])
    ready_read, ready_write = os.pipe()
    release_read, release_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # a running snapshot: holds the store shared until released
        with open(out / ".lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_SH)
            os.write(ready_write, b"x")
            os.read(release_read, 1)
        os._exit(0)
    os.read(ready_read, 1)
    done = threading.Event()
    pruner = threading.Thread(
        target=lambda: (prune_store(str(out), keep_last=1), done.set()), daemon=True
    )
    pruner.start()
    try:
        assert not done.wait(0.5)
        assert (out / "snapshots" / "01-a" / "manifest.json").exists()
    finally:
        os.write(release_write, b"x")
        os.waitpid(pid, 0)
    assert done.wait(10)
    assert not (out / "snapshots" / "01-a").exists()


@pytest.mark.parametrize(
    ("text", "hours"), [("12h", 12), ("7d", 168), ("2w", 336), ("1y6m", 365 * 24 + 180 * 24)]
)
def test_durations(text: str, hours: int) -> None:
    assert parse_duration(text) == timedelta(hours=hours)


@pytest.mark.parametrize("text", ["", "7", "d", "7 d", "-1d", "1x", "99999999999y"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a duration|longer than any calendar"):
        parse_duration(text)


def test_prune_needs_a_policy_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record_snapshot(tmp_path / "out", "01-a", [1])
    assert cli("prune", "--out", str(tmp_path / "out")) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert cli("prune", "--out", str(tmp_path / "nowhere"), "--keep-last", "1") == 1
    assert "holds no snapshots" in capsys.readouterr().err


def tamper(out: Path, folder: str, **changes: Any) -> Path:
    """Copy snapshot ``folder``'s manifest into a new folder with ``changes``."""
    manifest = json.loads((out / "snapshots" / "01-a" / "manifest.json").read_text())
    manifest.update(changes)
    target = out / "snapshots" / folder
    target.mkdir()
    (target / "manifest.json").write_text(json.dumps(manifest))
    return target


@pytest.mark.parametrize(
    ("folder", "changes", "reason"),
    [
        ("00-evil", {"snapshot_id": "../../victim"}, "not a manifest"),
        ("00-dot", {"snapshot_id": ".."}, "not a manifest"),
        ("01-a.bak", {}, "names snapshot 01-a, not its folder's"),
        ("00-deep", {}, "not a manifest"),
    ],
)
def test_prune_refuses_manifests_it_cannot_trust_and_deletes_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    folder: str,
    changes: dict[str, Any],
    reason: str,
) -> None:
    out = tmp_path / "store" / "out"
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "important").write_text("keep me")
    (out / "quarantine").mkdir(parents=True)
    record_snapshot(out, "01-a", [1])
    record_snapshot(out, "02-a", [2])
    target = tamper(out, folder, **changes)
    if folder == "00-deep":  # nesting deeper than the JSON parser's recursion
        (target / "manifest.json").write_text("[" * 200_000 + "]" * 200_000)
    ours = {".layout", ".lock", "index.sqlite", "index.sqlite-wal", "index.sqlite-shm"}
    before = sorted(p for p in out.rglob("*") if p.is_file() and p.name not in ours)
    assert cli("prune", "--out", str(out), "--keep-last", "1") == 1
    err = capsys.readouterr().err
    assert reason in err and err.count("\n") == 1 and "Traceback" not in err
    assert sorted(p for p in out.rglob("*") if p.is_file() and p.name not in ours) == before
    assert (victim / "important").read_text() == "keep me"
    assert cli("verify", "--out", str(out)) == 1
    assert reason in capsys.readouterr().out


def test_a_manifest_that_does_not_parse_stops_prune(tmp_path: Path) -> None:
    out = tmp_path / "out"
    record_snapshot(out, "01-a", [1])
    record_snapshot(out, "02-a", [2])
    newest = out / "snapshots" / "02-a" / "manifest.json"
    newest.write_text(newest.read_text().replace('"images": [', '"images": [ ,'))
    assert cli("prune", "--out", str(out), "--keep-last", "1") == 1
    assert len(list((out / "images").rglob("*.jpg"))) == 2


def test_prune_never_follows_links_out_of_the_store(tmp_path: Path) -> None:
    out = tmp_path / "out"
    record_snapshot(out, "01-a", [1])
    record_snapshot(out, "02-a", [2])
    outside = tmp_path / "outside"
    precious = outside / "ff" / "ee" / ("ffee" + "0" * 60 + ".jpg")
    precious.parent.mkdir(parents=True)
    precious.write_text("precious")
    (out / "images" / "ff").symlink_to(outside / "ff")
    snap = tmp_path / "snap"
    shutil.copytree(out / "snapshots" / "01-a", snap)
    assert cli("prune", "--out", str(out), "--keep-last", "1") == 0
    assert precious.read_text() == "precious"
    (out / "snapshots" / "00-linked").symlink_to(snap)
    assert cli("prune", "--out", str(out), "--keep-last", "1") == 1
    assert (snap / "manifest.json").exists()


@pytest.mark.parametrize("keep_last", ["-5", "0", "x"])
def test_keep_last_must_be_positive(tmp_path: Path, keep_last: str) -> None:
    record_snapshot(tmp_path / "out", "01-a", [1])
    assert cli("prune", "--out", str(tmp_path / "out"), "--keep-last", keep_last) == 2
    assert (tmp_path / "out" / "snapshots" / "01-a" / "manifest.json").exists()


def test_verify_and_a_dry_run_change_nothing_on_an_old_layout_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    shutil.copytree(Path(__file__).parent.parent / "data" / "legacy-store", out)
    before = sorted(out.rglob("*"))
    assert cli("verify", "--out", str(out)) == 1
    assert cli("prune", "--out", str(out), "--keep-last", "1", "--dry-run") == 1
    assert capsys.readouterr().err.count("has the old layout") == 2
    assert sorted(out.rglob("*")) == before
