"""Keeping a store honest over the years: ``verify`` re-hashes what the manifests reference
(restic's ``check --read-data``, git's ``fsck``), and ``prune`` forgets old snapshots by a
per-source policy and deletes the stored files no kept snapshot references (restic's
``forget --prune``: mark, then sweep)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from gallery_snapshot.catalog import Catalog
from gallery_snapshot.errors import ConfigError, StoreError
from gallery_snapshot.manifest import (
    ManifestProblem,
    iter_manifests,
    readable,
    scan_manifests,
    scan_object_manifests,
    source_key,
    stored_images,
)
from gallery_snapshot.migration import needs_migration, upgrade_store
from gallery_snapshot.object_store import INDEX_PREFIX, ObjectInfo, ObjectStore, parse_index_key
from gallery_snapshot.output import has_snapshots, open_store
from gallery_snapshot.store import STORED_PATH, Store, StoredFileProblem

Progress = Callable[[int, int], None]


class ReadStored(Protocol):
    def __call__(self, relpath: str, *, sha256: str, size: int | None = None) -> None: ...


@dataclass
class VerifyReport:
    files: int = 0
    snapshots: int = 0
    problems: list[str] = field(default_factory=list)


def verify_store(out_dir: str, *, progress: Progress | None = None) -> VerifyReport:
    """Re-hash every stored file any manifest references; one problem line per bad file
    (missing, symbolic link, not a regular file, unreadable, wrong size or sha256, a path
    outside the store), naming the snapshots that reference it, and one per file under
    ``snapshots/`` that is not a readable manifest. Changes nothing."""
    if isinstance(objects := open_store(out_dir), ObjectStore):
        objects.check_access()
        if not has_snapshots(out_dir):
            raise StoreError(f"{objects.url} holds no snapshots")
        return _verify(scan_object_manifests(objects), objects.read_stored, progress, threads=16)
    store = _existing_store(out_dir)
    with store.read_lock():
        return _verify(scan_manifests(store.root), store.read_stored, progress)


def _verify(
    scan: Iterable[tuple[object, dict[str, Any] | ManifestProblem]],
    read_stored: ReadStored,
    progress: Progress | None,
    *,
    threads: int = min(8, 2 * (os.cpu_count() or 1)),
) -> VerifyReport:
    report = VerifyReport()
    wanted: dict[str, tuple[str, int | None, list[str]]] = {}  # path -> sha256, size, ids
    for _, manifest in scan:
        if isinstance(manifest, ManifestProblem):
            report.problems.append(str(manifest))
            continue
        report.snapshots += 1
        for relpath, sha256, size in stored_images(manifest):
            expected, _, snapshots = wanted.setdefault(relpath, (sha256, size, []))
            snapshots.append(manifest["snapshot_id"])
            if expected != sha256:
                report.problems.append(
                    f"{relpath} is recorded with two sha256s ({expected}, {sha256})"
                )

    def check(item: tuple[str, tuple[str, int | None, list[str]]]) -> str | None:
        relpath, (sha256, size, snapshots) = item
        try:
            read_stored(relpath, sha256=sha256, size=size)
        except StoredFileProblem as exc:
            named = ", ".join(snapshots[:3])
            more = f" and {len(snapshots) - 3} more" if len(snapshots) > 3 else ""
            return f"{exc} (snapshot {named}{more})"
        return None

    report.files = len(wanted)
    with ThreadPoolExecutor(threads) as pool:
        for done, problem in enumerate(pool.map(check, wanted.items()), start=1):
            if problem:
                report.problems.append(problem)
            if progress:
                progress(done, report.files)
    return report


def _existing_store(out_dir: str) -> Store:
    """``out_dir`` as a store of the current layout, or StoreError saying why not."""
    store = Store(out_dir)
    if not (store.root / "snapshots").is_dir():
        raise StoreError(f"{store.root} holds no snapshots")
    if needs_migration(store):
        raise StoreError(
            f"{store.root} has the old layout (images/<host>/<name>): the next snapshot "
            "or prune migrates it"
        )
    return store


@dataclass
class PruneReport:
    kept: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    files_removed: int = 0
    bytes_removed: int = 0
    urls_forgotten: int = 0


def snapshots_to_keep(
    manifests: list[dict[str, Any]], *, keep_last: int | None, keep_within: timedelta | None
) -> set[str]:
    """Per source: the ``keep_last`` latest snapshots, and those started within
    ``keep_within`` of that source's latest snapshot (restic's rule, so a paused schedule
    never ages everything out)."""
    by_source: dict[str, list[dict[str, Any]]] = {}
    for manifest in manifests:
        by_source.setdefault(source_key(manifest["source"]), []).append(manifest)
    keep: set[str] = set()
    for group in by_source.values():
        group.sort(key=lambda m: str(m["snapshot_id"]), reverse=True)
        if keep_last:
            keep.update(m["snapshot_id"] for m in group[:keep_last])
        if keep_within is not None:
            times = {m["snapshot_id"]: _started(m) for m in group}
            latest = max((t for t in times.values() if t is not None), default=None)
            keep.update(
                sid
                for sid, started in times.items()
                # A snapshot of unknown time is kept: prune deletes only what it can date.
                if started is None or latest is None or latest - started <= keep_within
            )
    return keep


def _started(manifest: dict[str, Any]) -> datetime | None:
    try:
        started = datetime.fromisoformat(str(manifest.get("started_at")))
    except ValueError:
        return None
    return started if started.tzinfo else started.replace(tzinfo=UTC)


def prune_store(
    out_dir: str,
    *,
    keep_last: int | None,
    keep_within: timedelta | None = None,
    dry_run: bool = False,
) -> PruneReport:
    """Remove the snapshots outside the policy, then every stored file no kept snapshot
    references. Holds the store alone, so no running snapshot loses what it reuses; refuses
    to start while any file under ``snapshots/`` cannot be read as a manifest."""
    if keep_last is None and keep_within is None:
        raise ConfigError("say what to keep: --keep-last N and/or --keep-within DURATION")
    if keep_last is not None and keep_last < 1:
        raise ConfigError(f"--keep-last must be at least 1, not {keep_last}")
    if isinstance(objects := open_store(out_dir), ObjectStore):
        objects.check_access()
        return prune_objects(objects, keep_last=keep_last, keep_within=keep_within, dry_run=dry_run)
    if dry_run:
        store = _existing_store(out_dir)
    else:
        store = Store(out_dir)
        if not (store.root / "snapshots").is_dir():
            raise StoreError(f"{store.root} holds no snapshots")
        upgrade_store(store)
    report = PruneReport()
    with store.store_lock(exclusive=True):
        manifests = {m["snapshot_id"]: (p, m) for p, m in iter_manifests(store.root, strict=True)}
        referenced = plan_prune(
            {sid: m for sid, (_, m) in manifests.items()},
            report,
            keep_last=keep_last,
            keep_within=keep_within,
        )
        if not dry_run:
            for snapshot_id in report.removed:
                path, _ = manifests[snapshot_id]
                path.unlink()  # first the record, then what only it described
                shutil.rmtree(path.parent, ignore_errors=True)
                quarantine = store.quarantine_dir(snapshot_id)
                if quarantine.is_symlink():
                    quarantine.unlink()
                else:
                    shutil.rmtree(quarantine, ignore_errors=True)
        kept_sha256s: set[str] = set()
        for path in _stored_entries(store.root / "images"):
            relpath = store.relative(path)
            match = STORED_PATH.match(relpath)
            if match is None:
                continue
            if relpath in referenced:
                kept_sha256s.add(match.group(3))
                continue
            report.files_removed += 1
            report.bytes_removed += path.lstat().st_size
            if not dry_run:
                path.unlink()
                for folder in (path.parent, path.parent.parent):
                    with contextlib.suppress(OSError):  # not empty: other files live there
                        folder.rmdir()
        if not dry_run:
            report.urls_forgotten = Catalog(store.index_path).retain(kept_sha256s)
    return report


def plan_prune(
    manifests: dict[str, dict[str, Any]],
    report: PruneReport,
    *,
    keep_last: int | None,
    keep_within: timedelta | None,
) -> set[str]:
    """Fill ``report.kept`` and ``report.removed``; return the stored paths kept snapshots
    reference."""
    keep = snapshots_to_keep(list(manifests.values()), keep_last=keep_last, keep_within=keep_within)
    report.kept = sorted(keep)
    report.removed = sorted(manifests.keys() - keep)
    return {path for sid in keep for path, _, _ in stored_images(manifests[sid])}


def prune_objects(
    store: ObjectStore, *, keep_last: int | None, keep_within: timedelta | None, dry_run: bool
) -> PruneReport:
    """``prune_store`` on an object store: under its prune lock (none while a snapshot runs),
    each removed snapshot's manifest first, then its other objects, then every image no kept
    snapshot references, then the index entries of images gone."""
    report = PruneReport()
    with contextlib.nullcontext() if dry_run else store.prune_lock():
        manifests = {
            m["snapshot_id"]: m for _, m in readable(scan_object_manifests(store), strict=True)
        }
        if not manifests:
            raise StoreError(f"{store.url} holds no snapshots")
        referenced = plan_prune(manifests, report, keep_last=keep_last, keep_within=keep_within)
        if not dry_run:
            store.confirm_alone()
            # A snapshot that finished since the first read keeps every image it names.
            for _, newer in readable(
                scan_object_manifests(store, skip=set(manifests)), strict=True
            ):
                referenced.update(path for path, _, _ in stored_images(newer))
            for snapshot_id in report.removed:
                folder = f"snapshots/{snapshot_id}/"
                store.delete([f"{folder}manifest.json"])  # the record first
                rest = [info.key for info in store.listing(folder)]
                rest += [info.key for info in store.listing(f"quarantine/{snapshot_id}/")]
                store.delete(rest)
        unreferenced = [
            info
            for info in store.listing("images/")
            if STORED_PATH.match(info.key) and info.key not in referenced
        ]
        report.files_removed = len(unreferenced)
        report.bytes_removed = sum(info.size for info in unreferenced)
        if not dry_run:
            store.delete(info.key for info in unreferenced)
            kept = {match.group(3) for path in referenced if (match := STORED_PATH.match(path))}
            forgotten = _forgotten_index_entries(store, kept)
            store.delete(forgotten)
            report.urls_forgotten = len(forgotten)
    return report


def _forgotten_index_entries(store: ObjectStore, kept: set[str]) -> list[str]:
    """Index entries to delete: those naming an image no longer kept, and those superseded by
    a newer entry of the same URL (lookup reads only the newest)."""
    newest: dict[str, ObjectInfo] = {}
    forgotten: list[str] = []
    for info in store.listing(INDEX_PREFIX):
        if (entry := parse_index_key(info.key)) is None:
            continue  # not ours
        if entry[1].sha256 not in kept:
            forgotten.append(info.key)
            continue
        older = newest.setdefault(entry[0], info)
        if older is not info:
            superseded = min(older, info, key=lambda each: each.modified)
            newest[entry[0]] = info if superseded is older else older
            forgotten.append(superseded.key)
    return forgotten


def _stored_entries(images: Path) -> list[Path]:
    """Files (and links) two fan-out levels down, never descending through a link."""
    found: list[Path] = []
    for first in _real_folders(images):
        for second in _real_folders(first):
            with os.scandir(second) as entries:
                found += [Path(e.path) for e in entries if not e.is_dir(follow_symlinks=False)]
    return sorted(found)


def _real_folders(folder: Path) -> list[Path]:
    with os.scandir(folder) as entries:
        return [Path(e.path) for e in entries if e.is_dir(follow_symlinks=False)]
