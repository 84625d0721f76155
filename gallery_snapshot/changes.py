"""What changed between two snapshots of a source, by URL and by content: the ``changes``
block of a manifest, computed once as the snapshot is recorded, which the report, the pages,
the ``diff`` command and the flow's events all read.

Against the previous snapshot only (one manifest read, whatever the store's history): a URL
delisted and listed again later counts as new, not as come back; ``gallery-snapshot find``
shows an image's whole history. Each URL counts once (a listing may repeat one)."""

from __future__ import annotations

import re

from gallery_snapshot.downloader import PLACEHOLDER_REASON
from gallery_snapshot.models import ChangeCounts, Changes, ImageRecord, Manifest

_HTTP_GONE = re.compile(r"^HTTP (404|410)\b")
GONE_CAUSES = ("gone_http", "gone_placeholder", "gone_other")
# The URL lists of a Changes block, in the order they are shown, as a person reads them.
LABELS = {
    "new": "new",
    "vanished": "vanished",
    "came_back": "came back",
    "changed": "changed (other bytes)",
    "gone_http": "gone (HTTP 404/410)",
    "gone_placeholder": "gone (removed placeholder)",
    "gone_other": "gone (other)",
}
LISTS = tuple(LABELS)


def stored_by_url(manifest: Manifest) -> dict[str, str | None]:
    """The sha256 of each URL the snapshot stored (the first record of a repeated URL)."""
    stored: dict[str, str | None] = {}
    for image in manifest.stored():
        stored.setdefault(image.url, image.sha256)
    return stored


def gone_cause(image: ImageRecord) -> str:
    """Which ``gone_*`` list a gone image belongs in, by the reason its record gives."""
    error = image.error or ""
    if _HTTP_GONE.match(error):
        return "gone_http"
    return "gone_placeholder" if error == PLACEHOLDER_REASON else "gone_other"


def compare(previous: Manifest, current: Manifest) -> Changes:
    """``current``'s changes since ``previous`` (a snapshot of the same source). Every URL
    stored now is new, come back, changed or unchanged; every URL stored then is vanished,
    changed or unchanged; the gone lists split the vanished URLs whose image is now gone."""
    before, now = stored_by_url(previous), stored_by_url(current)
    listed_before = {image.url for image in previous.images()}
    lists: dict[str, list[str]] = {name: [] for name in ("new", "came_back", "changed")}
    unchanged = 0
    for url, sha256 in now.items():
        if url in before:
            if before[url] == sha256:
                unchanged += 1
            else:
                lists["changed"].append(url)
        else:
            lists["came_back" if url in listed_before else "new"].append(url)
    vanished = [url for url in before if url not in now]
    gone: dict[str, list[str]] = {cause: [] for cause in GONE_CAUSES}
    vanished_set = set(vanished)
    for image in current.images():
        if image.status == "gone" and image.url in vanished_set:
            vanished_set.discard(image.url)  # a repeated URL counts once
            gone[gone_cause(image)].append(image.url)
    lists = {**lists, "vanished": vanished, **gone}
    counts = ChangeCounts(unchanged=unchanged, **{name: len(urls) for name, urls in lists.items()})
    return Changes(previous=previous.snapshot_id, counts=counts, **lists)


def with_changes(manifest: Manifest, previous: Manifest | None) -> Manifest:
    """``manifest`` with its changes since ``previous`` in its header (none without one)."""
    if previous is None:
        return manifest
    header = manifest.header.model_copy(update={"changes": compare(previous, manifest)})
    return manifest.with_header(header)


def changed_percent(changes: Changes | None) -> float:
    """The share of the previous snapshot's stored URLs that vanished or changed, in %
    (0 for a first snapshot, or one after a snapshot that stored nothing)."""
    if changes is None:
        return 0.0
    counts = changes.counts
    before = counts.vanished + counts.changed + counts.unchanged
    return 100.0 * (counts.vanished + counts.changed) / before if before else 0.0
