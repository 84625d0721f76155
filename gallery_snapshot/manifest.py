"""The snapshot manifest: what was listed, selected, stored and skipped, and why."""

from __future__ import annotations

import io
import json
import logging
from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from gallery_snapshot.errors import StoreError
from gallery_snapshot.models import (
    STATUSES,
    STORED,
    Counts,
    ImageRecord,
    Manifest,
    ManifestHeader,
    SkippedLink,
)
from gallery_snapshot.store import SnapshotStore, open_store, read_location
from gallery_snapshot.store.layout import manifest_relpath

COUNT_KEYS = tuple(Counts.model_fields)

logger = logging.getLogger(__name__)
Where = TypeVar("Where")
# A store, or its name (opened here).
StoreLike = SnapshotStore | str | Path


def status_counts(records: list[ImageRecord]) -> str:
    """``"3 downloaded, 1 gone"``: a one-line tally for progress logs."""
    counts: Counter[str] = Counter(record.status for record in records)
    return ", ".join(f"{counts[status]} {status}" for status in STATUSES if counts[status])


def build_manifest(
    *,
    snapshot_id: str,
    started_at: str,
    finished_at: str,
    source: dict[str, Any],
    link_count: int,
    records: list[ImageRecord],
    skipped: list[SkippedLink],
) -> Manifest:
    """The manifest of a snapshot's records; images in rank order. Records that validation
    marked ``skipped`` (stored images this run does not want) join the skipped links. The
    records themselves are its entries: no copy of them is made."""
    images = sorted(
        (record for record in records if record.status != "skipped"), key=lambda r: r.rank
    )
    skipped = skipped + [
        SkippedLink(url=record.url, id=record.id, reason=record.error or "not wanted")
        for record in records
        if record.status == "skipped"
    ]
    by_status: Counter[str] = Counter(record.status for record in images)
    counts = Counts(
        links=link_count,
        selected=len(images),
        skipped=len(skipped),
        **{status: by_status[status] for status in STATUSES},
    )
    header = ManifestHeader(
        snapshot_id=snapshot_id,
        started_at=started_at,
        finished_at=finished_at,
        source=source,
        counts=counts,
    )
    return Manifest(header, images, skipped)


def opened(store: StoreLike) -> SnapshotStore:
    return open_store(str(store)) if isinstance(store, str | Path) else store


def write_manifest(store: StoreLike, manifest: Manifest) -> str:
    """Write the manifest atomically (one PUT on an object store); return its location."""
    relpath = manifest_relpath(manifest.snapshot_id)
    return opened(store).write(relpath, encode_manifest(manifest))


# Separators that make the C encoder write a flat object as ``indent=2`` writes it two levels
# deep (an image in ``images``), once its braces are put on their own lines.
_FLAT_ITEM = json.JSONEncoder(ensure_ascii=False, separators=(",\n      ", ": "))
_SCALAR = (str, int, float, bool, type(None))


def _indented(value: Any, depth: int) -> str:
    """``value`` as ``json.dumps(indent=2)`` writes it ``depth`` levels deep."""
    return json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n" + "  " * depth)


def _list_item(item: Any) -> str:
    """One entry of a top-level list, as ``json.dumps(indent=2)`` writes it."""
    if isinstance(item, dict) and item and all(isinstance(v, _SCALAR) for v in item.values()):
        return "{\n      " + _FLAT_ITEM.encode(item)[1:-1] + "\n    }"
    return _indented(item, 2)


def encode_manifest(manifest: Manifest) -> bytes:
    """Exactly ``json.dumps(manifest.as_document(), indent=2, ensure_ascii=False)`` in UTF-8,
    written entry by entry: no dict of every image is made. With an indent, ``json`` encodes
    in pure Python and joins every small piece at once: at 100,000 images that is ~1 s and
    ~250 MB above the manifest's own 41 MB. Each entry is a flat object, which the C encoder
    writes in one call."""
    document: dict[str, Any | Iterator[Any]] = manifest.header.model_dump()
    document["images"] = (image.model_dump() for image in manifest.images())
    document["skipped"] = (item.model_dump() for item in manifest.skipped())
    return encode_document(document)


def encode_document(document: dict[str, Any | Iterator[Any]]) -> bytes:
    """``json.dumps(document, indent=2, ensure_ascii=False)`` in UTF-8, where a value that is
    an iterator stands for a list of its items, each taken only when written."""
    out = io.BytesIO()
    for index, (key, value) in enumerate(document.items()):
        out.write(f"{',' if index else '{'}\n  {json.dumps(key, ensure_ascii=False)}: ".encode())
        if isinstance(value, list | Iterator):
            position = -1
            for position, item in enumerate(value):
                out.write(f"{',' if position else '['}\n    {_list_item(item)}".encode())
            out.write(b"\n  ]" if position >= 0 else b"[]")
        else:
            out.write(_indented(value, 1).encode())
    out.write(b"\n}" if document else b"{}")
    return out.getvalue()


class _Entries(BaseModel):
    """A manifest's entries, as lists, before each is checked (``_check_entries``) one at a
    time, not made into models all at once (at 100,000 images, ~140 MB more while a manifest
    is read)."""

    images: list[Any]
    skipped: list[Any] = []


def _check_entries(entries: _Entries) -> None:
    """ValueError unless every image is an ImageRecord, stored ones saying where, and every
    skipped link a SkippedLink."""
    for entry in entries.images:
        image = ImageRecord.model_validate(entry)
        if image.status in STORED and not (image.path and image.sha256):
            raise ValueError(f"image {image.rank} is {image.status} without path or sha256")
    for entry in entries.skipped:
        SkippedLink.model_validate(entry)


class ManifestProblem(StoreError):
    """A file under ``snapshots/`` that cannot be read or trusted as a manifest."""


def read_manifest(location: str | Path, *, folder_name: str | None = None) -> Manifest:
    """A manifest as written by ``write_manifest``, at the location it returned (locally a
    regular file, never read through a link; or an object's URL); ManifestProblem when it is
    not one, or (given ``folder_name``) belongs to another snapshot's folder."""
    where = str(location)
    try:
        data = read_location(where)
    except OSError as exc:
        raise ManifestProblem(f"cannot read {where}: {exc.strerror}") from None
    except StoreError as exc:
        raise ManifestProblem(f"cannot read {where}: {str(exc).splitlines()[0]}") from None
    return parse_manifest(data, where=where, folder_name=folder_name)


def parse_manifest(data: bytes, *, where: str, folder_name: str | None = None) -> Manifest:
    """The manifest ``data`` holds, each entry checked; ManifestProblem when it is not one."""
    try:
        document = json.loads(data)
        header = ManifestHeader.model_validate(document)
        entries = _Entries.model_validate(document)
        _check_entries(entries)
    except (ValueError, RecursionError) as exc:  # JSON's and pydantic's errors are ValueErrors
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ManifestProblem(f"{where} is not a manifest: {reason}") from None
    if folder_name is not None and header.snapshot_id != folder_name:
        raise ManifestProblem(f"{where} names snapshot {header.snapshot_id}, not its folder's")
    return Manifest(header, entries.images, entries.skipped)


def manifest_bytes(store: SnapshotStore, snapshot_id: str) -> tuple[str, bytes | ManifestProblem]:
    """A snapshot's manifest as stored (a GET on an object store), or the problem that stops
    reading it, with its location."""
    relpath = manifest_relpath(snapshot_id)
    where = store.location(relpath)
    try:
        return where, store.read(relpath)
    except OSError as exc:
        return where, ManifestProblem(f"cannot read {where}: {exc.strerror}")
    except StoreError as exc:
        return where, ManifestProblem(f"cannot read {where}: {str(exc).splitlines()[0]}")


def _earlier(snapshot_id: str, before: str | None) -> bool:
    return before is None or snapshot_id < before


def scan_manifests(
    store: StoreLike,
    *,
    newest_first: bool = False,
    skip: Collection[str] = (),
    before: str | None = None,
) -> Iterator[tuple[str, Manifest | ManifestProblem]]:
    """Every snapshot's manifest (by its location), oldest (or newest) first, or the problem
    that stops reading it; each read only when reached (a GET on an object store), none for
    the snapshot ids in ``skip``, nor from ``before`` on (a manifest names its folder: an id
    below ``before`` is all a folder name below it can hold). Folders without a manifest (a
    run that died before recording) are passed over."""
    store = opened(store)
    ids = sorted(
        (sid for sid in store.snapshot_ids() if sid not in skip and _earlier(sid, before)),
        reverse=newest_first,
    )
    for snapshot_id in ids:
        where, data = manifest_bytes(store, snapshot_id)
        if isinstance(data, ManifestProblem):
            yield where, data
            continue
        try:
            manifest = parse_manifest(data, where=where, folder_name=snapshot_id)
        except ManifestProblem as problem:
            yield where, problem
        else:
            yield where, manifest


def iter_manifests(store: StoreLike, *, strict: bool = False) -> Iterator[tuple[str, Manifest]]:
    """The readable manifests of ``store``, oldest first, with their locations."""
    return readable(scan_manifests(store), strict=strict)


def manifests_anywhere(
    store: StoreLike, *, strict: bool = False, newest_first: bool = False, before: str | None = None
) -> Iterator[Manifest]:
    """The readable manifests of a store, oldest (or newest) first; only those of snapshot ids
    below ``before``, when given (the others are not even read)."""
    scan = scan_manifests(store, newest_first=newest_first, before=before)
    return (manifest for _, manifest in readable(scan, strict=strict))


def readable(
    scan: Iterable[tuple[Where, Manifest | ManifestProblem]], *, strict: bool
) -> Iterator[tuple[Where, Manifest]]:
    """The manifests of ``scan``. Anything else is skipped with a warning, or, when
    ``strict`` (prune must know everything a snapshot references), raises ManifestProblem."""
    for where, manifest in scan:
        if isinstance(manifest, ManifestProblem):
            if strict:
                raise manifest
            logger.warning("skipping %s", manifest)
        else:
            yield where, manifest


def source_key(source: dict[str, Any]) -> str:
    """Which listing a snapshot is of, for grouping and diffs: the source without the API's
    address (the demo gallery's port may change from run to run)."""
    return json.dumps({k: v for k, v in source.items() if k != "api_url"}, sort_keys=True)


def stored_images(manifest: Manifest) -> Iterator[tuple[str, str, int | None]]:
    """``(path, sha256, bytes)`` of every image a (read) manifest says is stored."""
    for image in manifest.stored():
        yield str(image.path), str(image.sha256), image.bytes


def summary_table(counts: Counts) -> str:
    """The counts as a small aligned text table."""
    width = max(len(key) for key in COUNT_KEYS)
    return "\n".join(f"  {key:<{width}}  {getattr(counts, key):>6}" for key in COUNT_KEYS)
