"""A store's snapshots over time, read from their manifests' headers: each source's
timeline, the previous snapshot of a source, and every snapshot an image appears in.

A header is read without its entries: a manifest is written header first (``snapshot_id`` to
``changes``), then ``"images"`` on a line of its own at the top level (JSON escapes a line
break inside a string, so no value can hold that line). Listing 1,000 snapshots of 200
images each then decodes 1,000 small objects, not 200,000 image records; the entries are
checked when a manifest is read whole."""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from gallery_snapshot.changes import LISTS, compare
from gallery_snapshot.errors import ConfigError, StoreError
from gallery_snapshot.escaping import one_line
from gallery_snapshot.manifest import (
    ManifestProblem,
    StoreLike,
    manifest_bytes,
    manifests_anywhere,
    opened,
    parse_manifest,
    source_key,
)
from gallery_snapshot.models import Changes, Manifest, ManifestHeader
from gallery_snapshot.naming import slug
from gallery_snapshot.sources.spec import SourceSpec
from gallery_snapshot.store import SnapshotStore
from gallery_snapshot.store.layout import HISTORY_CACHE

logger = logging.getLogger(__name__)
_ENTRIES_START = b'\n  "images": '


@dataclass(frozen=True)
class Snapshot:
    """One snapshot as the history shows it: its header and its source's key."""

    header: ManifestHeader
    source: str  # ``manifest.source_key`` of its source

    @property
    def snapshot_id(self) -> str:
        return self.header.snapshot_id


def parse_header(data: bytes, *, where: str, folder_name: str | None = None) -> ManifestHeader:
    """The header of the manifest ``data`` holds, its entries left undecoded when the
    manifest has the written shape (else read whole); ManifestProblem when it is none."""
    end = data.find(_ENTRIES_START)
    if end > 0:
        try:
            header = ManifestHeader.model_validate(json.loads(data[:end].rstrip(b",") + b"}"))
        except (ValueError, ValidationError):
            pass
        else:
            if folder_name is not None and header.snapshot_id != folder_name:
                problem = f"{where} names snapshot {header.snapshot_id}, not its folder's"
                raise ManifestProblem(problem)
            return header
    return parse_manifest(data, where=where, folder_name=folder_name).header


def _read_header(store: SnapshotStore, snapshot_id: str) -> ManifestHeader | ManifestProblem:
    where, data = manifest_bytes(store, snapshot_id)
    if isinstance(data, ManifestProblem):
        return data
    try:
        return parse_header(data, where=where, folder_name=snapshot_id)
    except ManifestProblem as problem:
        return problem


def snapshots(store: StoreLike) -> list[Snapshot]:
    """Every readable snapshot of the store, oldest first (a manifest that cannot be read is
    skipped with a warning): each header from the store's ``history.json`` where it holds
    it (one GET for all), else read from the manifest (a GET each on an object store, on
    the store's threads). The listing of the manifests decides which snapshots there are."""
    store = opened(store)
    ids = sorted(store.snapshot_ids())
    cached = _cached_headers(store)
    missing = [sid for sid in ids if sid not in cached]
    with ThreadPoolExecutor(max(1, store.verify_threads)) as pool:
        read = dict(
            zip(missing, pool.map(lambda sid: _read_header(store, sid), missing), strict=True)
        )
    found = []
    for snapshot_id in ids:
        header = cached.get(snapshot_id) or read[snapshot_id]
        if isinstance(header, ManifestProblem):
            logger.warning("skipping %s", header)
        else:
            found.append(Snapshot(_without_urls(header), source_key(header.source)))
    return found


def _without_urls(header: ManifestHeader) -> ManifestHeader:
    """The header with its changes' counts only (the history lists no URLs)."""
    if header.changes is None:
        return header
    changes = header.changes.model_copy(update={name: [] for name in LISTS})
    return header.model_copy(update={"changes": changes})


def _cached_headers(store: SnapshotStore) -> dict[str, ManifestHeader]:
    """The headers ``history.json`` holds by snapshot id; none when it cannot be read. It
    holds no truth of its own: a snapshot missing from it (two recorded at once, each
    writing it) is read from its manifest, one it lists that is gone (pruned) is left out."""
    try:
        document = json.loads(store.read(HISTORY_CACHE))
        headers = [ManifestHeader.model_validate(entry) for entry in document["snapshots"]]
    except (OSError, StoreError, ValueError, ValidationError, KeyError, TypeError):
        return {}
    return {header.snapshot_id: header for header in headers}


def remember_snapshots(store: StoreLike, recorded: ManifestHeader | None = None) -> list[Snapshot]:
    """Every snapshot of the store (``recorded`` as given: a retried run writes its
    snapshot again), written to ``history.json`` for the next reader."""
    store = opened(store)
    found = snapshots(store)
    if recorded is not None:
        found = [s for s in found if s.snapshot_id != recorded.snapshot_id]
        found.append(Snapshot(_without_urls(recorded), source_key(recorded.source)))
        found.sort(key=lambda snapshot: snapshot.snapshot_id)
    document = {"snapshots": [snapshot.header.model_dump() for snapshot in found]}
    store.write(HISTORY_CACHE, json.dumps(document, ensure_ascii=False).encode())
    return found


def timelines(found: list[Snapshot]) -> dict[str, list[Snapshot]]:
    """The snapshots by source, each source's oldest first, sources in order of their first."""
    by_source: dict[str, list[Snapshot]] = {}
    for snapshot in found:
        by_source.setdefault(snapshot.source, []).append(snapshot)
    return by_source


def source_label(source: dict[str, Any]) -> str:
    """``gallery hot/viral/day``, ``urls links.txt``: a source as a person reads it."""
    try:
        return SourceSpec.model_validate(source).describe()
    except (ValueError, ValidationError, KeyError):
        return source_key(source)


def source_slug(source: dict[str, Any]) -> str:
    """The source's label as a slug: what an event's resource id ends with."""
    return slug(source_label(source))[:60].strip("-") or "source"


def previous_manifest(store: StoreLike, manifest: Manifest) -> Manifest | None:
    """The latest earlier manifest of the same source, if any (files that are not manifests
    are skipped with a warning). Read newest first, so a store of a year of hourly snapshots
    reads a few manifests, not all of them (a GET each on object storage); never
    ``manifest``'s own, which a 100,000-image snapshot took ~1 s to read again."""
    source = source_key(manifest.source)
    earlier = manifests_anywhere(store, newest_first=True, before=manifest.snapshot_id)
    for other in earlier:
        if source_key(other.source) == source:
            return other
    return None


def read_snapshot(store: StoreLike, snapshot_id: str) -> Manifest:
    """A snapshot's whole manifest; ManifestProblem when it cannot be read."""
    where, data = manifest_bytes(opened(store), snapshot_id)
    if isinstance(data, ManifestProblem):
        raise data
    return parse_manifest(data, where=where, folder_name=snapshot_id)


class HistoryQueryError(ConfigError):
    """A question about the history the store cannot answer: one line for the person asking."""


def choose_pair(found: list[Snapshot], ids: list[str], source: str | None) -> tuple[str, str]:
    """The two snapshots a diff compares: both named; one named and the previous snapshot of
    its source; or, named none, the last two of ``source`` (of the latest snapshot's source
    when None)."""
    known = {snapshot.snapshot_id: snapshot for snapshot in found}
    for snapshot_id in ids:
        if snapshot_id not in known:
            raise HistoryQueryError(f"no snapshot {one_line(snapshot_id)} in this store")
    if len(ids) == 2:
        return ids[0], ids[1]
    if ids:
        newest = known[ids[0]]
    else:
        candidates = matching_source(found, source)
        newest = candidates[-1]
    line = timelines(found)[newest.source]
    position = line.index(newest)
    if position == 0:
        raise HistoryQueryError(f"{newest.snapshot_id} is the first snapshot of its source")
    return line[position - 1].snapshot_id, newest.snapshot_id


def matching_source(found: list[Snapshot], source: str | None) -> list[Snapshot]:
    """The snapshots of the sources ``source`` names (its slug, or part of its label; every
    source when None), oldest first; HistoryQueryError when there are none."""
    if source is None:
        chosen = found
    else:
        wanted = source.lower()
        chosen = [
            s
            for s in found
            if wanted == source_slug(s.header.source)
            or wanted in source_label(s.header.source).lower()
        ]
    if not chosen:
        named = f" of a source matching {one_line(source)}" if source is not None else ""
        raise HistoryQueryError(f"no snapshots{named} in this store")
    return chosen


def changes_between(store: StoreLike, older_id: str, newer_id: str) -> Changes:
    """What changed from one snapshot to another: the newer manifest's own ``changes`` block
    when it is against the older one, else compared anew."""
    store = opened(store)
    newer = read_snapshot(store, newer_id)
    recorded = newer.header.changes
    if recorded is not None and recorded.previous == older_id:
        return recorded
    return compare(read_snapshot(store, older_id), newer)


@dataclass(frozen=True)
class Appearance:
    """An image's record in one snapshot."""

    snapshot_id: str
    source: str  # the source's label
    url: str
    id: str
    status: str
    sha256: str | None


def _needles(query: str) -> tuple[bytes, bytes]:
    """``query`` as a manifest writes it inside a JSON string (as written now, and with
    ``ensure_ascii``): a manifest holding neither is not decoded at all."""
    return (
        json.dumps(query, ensure_ascii=False)[1:-1].encode(),
        json.dumps(query)[1:-1].encode(),
    )


def _appearances(store: SnapshotStore, snapshot_id: str, query: str) -> list[Appearance]:
    where, data = manifest_bytes(store, snapshot_id)
    if isinstance(data, ManifestProblem):
        logger.warning("skipping %s", data)
        return []
    if not any(needle in data for needle in _needles(query)):
        return []
    try:
        header = parse_header(data, where=where, folder_name=snapshot_id)
        images = json.loads(data).get("images", [])
    except (ManifestProblem, ValueError) as exc:
        logger.warning("skipping %s", one_line(exc))
        return []
    label = source_label(header.source)
    return [
        Appearance(snapshot_id, label, str(e["url"]), str(e["id"]), str(e["status"]), e["sha256"])
        for e in images
        if isinstance(e, dict) and query in (e.get("url"), e.get("sha256"), e.get("id"))
    ]


def find_image(store: StoreLike, query: str) -> list[Appearance]:
    """Every record of the image whose URL, sha256 or id is ``query``, oldest snapshot first.
    Every manifest is read (on the store's threads); only those holding ``query`` are
    decoded, and their entries only as JSON."""
    if not query.strip():
        raise HistoryQueryError("give a URL, a sha256 or an image id to find")
    store = opened(store)
    ids = sorted(store.snapshot_ids())
    with ThreadPoolExecutor(max(1, store.verify_threads)) as pool:
        found = pool.map(lambda sid: _appearances(store, sid, query), ids)
        return [appearance for each in found for appearance in each]
