"""Keeping a store honest over the years: ``verify`` re-hashes what the manifests reference
(restic's ``check --read-data``, git's ``fsck``), and ``prune`` forgets old snapshots by a
per-source policy and deletes the stored files no kept snapshot references (restic's
``forget --prune``: mark, then sweep). Written once, against the store's interface: each
backend keeps its own promises (a folder's exclusive flock, an object store's lock objects
re-checked before anything is deleted)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from gallery_snapshot.errors import ConfigError, StoreError
from gallery_snapshot.history_page import write_history_page
from gallery_snapshot.manifest import (
    ManifestProblem,
    readable,
    scan_manifests,
    source_key,
    stored_images,
)
from gallery_snapshot.models import Manifest, ManifestHeader
from gallery_snapshot.store import open_store
from gallery_snapshot.store.contract import SnapshotStore, StoredFileProblem
from gallery_snapshot.store.layout import stored_sha256

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
    store = open_store(out_dir)
    store.open_existing(upgrade=False)
    with store.read_lock():
        return _verify(
            scan_manifests(store), store.check_stored, progress, threads=store.verify_threads
        )


def _verify(
    scan: Iterable[tuple[object, Manifest | ManifestProblem]],
    read_stored: ReadStored,
    progress: Progress | None,
    *,
    threads: int,
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
            snapshots.append(manifest.snapshot_id)
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


@dataclass
class PruneReport:
    kept: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    files_removed: int = 0
    bytes_removed: int = 0
    urls_forgotten: int = 0


def snapshots_to_keep(
    headers: list[ManifestHeader], *, keep_last: int | None, keep_within: timedelta | None
) -> set[str]:
    """Per source: the ``keep_last`` latest snapshots, and those started within
    ``keep_within`` of that source's latest snapshot (restic's rule, so a paused schedule
    never ages everything out)."""
    by_source: dict[str, list[ManifestHeader]] = {}
    for header in headers:
        by_source.setdefault(source_key(header.source), []).append(header)
    keep: set[str] = set()
    for group in by_source.values():
        group.sort(key=lambda header: header.snapshot_id, reverse=True)
        if keep_last:
            keep.update(header.snapshot_id for header in group[:keep_last])
        if keep_within is not None:
            times = {header.snapshot_id: _started(header) for header in group}
            latest = max((t for t in times.values() if t is not None), default=None)
            keep.update(
                sid
                for sid, started in times.items()
                # A snapshot of unknown time is kept: prune deletes only what it can date.
                if started is None or latest is None or latest - started <= keep_within
            )
    return keep


def _started(header: ManifestHeader) -> datetime | None:
    try:
        started = datetime.fromisoformat(header.started_at)
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
    store = open_store(out_dir)
    store.open_existing(upgrade=not dry_run)
    report = PruneReport()
    with store.read_lock() if dry_run else store.prune_lock():
        manifests = {m.snapshot_id: m for _, m in readable(scan_manifests(store), strict=True)}
        if not manifests:
            raise StoreError(f"{store.name} holds no snapshots")
        referenced = plan_prune(manifests, report, keep_last=keep_last, keep_within=keep_within)
        if not dry_run:
            store.confirm_alone()
            # A snapshot that finished since the first read keeps every image it names.
            for _, newer in readable(scan_manifests(store, skip=set(manifests)), strict=True):
                referenced.update(path for path, _, _ in stored_images(newer))
            for snapshot_id in report.removed:
                store.delete_snapshot(snapshot_id)
        _sweep_images(store, referenced, report, dry_run=dry_run)
    if report.removed and not dry_run:
        write_history_page(store)  # its links to the snapshots removed go
    return report


def _sweep_images(
    store: SnapshotStore, referenced: set[str], report: PruneReport, *, dry_run: bool
) -> None:
    """Delete every stored image no kept snapshot references, then the index entries of the
    images gone."""
    unreferenced: list[str] = []
    kept: set[str] = set()
    for relpath, size in store.stored_files():
        if relpath in referenced:
            kept.add(str(stored_sha256(relpath)))
            continue
        unreferenced.append(relpath)
        report.files_removed += 1
        report.bytes_removed += size
    if not dry_run:
        store.delete_images(unreferenced)
        report.urls_forgotten = store.index.retain(kept)


def plan_prune(
    manifests: dict[str, Manifest],
    report: PruneReport,
    *,
    keep_last: int | None,
    keep_within: timedelta | None,
) -> set[str]:
    """Fill ``report.kept`` and ``report.removed``; return the stored paths kept snapshots
    reference."""
    headers = [manifest.header for manifest in manifests.values()]
    keep = snapshots_to_keep(headers, keep_last=keep_last, keep_within=keep_within)
    report.kept = sorted(keep)
    report.removed = sorted(manifests.keys() - keep)
    return {path for sid in keep for path, _, _ in stored_images(manifests[sid])}
