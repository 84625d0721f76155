"""The store's layout, the same on every backend: where images, manifests, pages, quarantined
files, the URL index and the locks live, relative to the store's root (a folder, or an object
store's prefix). Every other module asks here; none spells these paths itself.

    images/ab/cd/<sha256>.<ext>      validated images, named by their content, shared
    snapshots/<id>/manifest.json     one manifest per snapshot (the record of truth)
    snapshots/<id>/index.html        the same snapshot for a person, with thumbnails
    index.html                       every source's timeline of snapshots, linking to each
    history.json                     the snapshots' headers, read by the history at once
    quarantine/<id>/<rank>-<name>    files of snapshot <id> that failed validation
    .layout                          the layout's version: marks a folder as a store
    index.sqlite                     a folder's URL index (an SQLite file)
    index/<url hash>/<image>         an object store's URL index (one empty object per URL)
    locks/…                          an object store's locks (a folder locks with flock)
"""

from __future__ import annotations

import re

# File extensions of the stored formats (Pillow's names).
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp"}
STORED_PATH = re.compile(r"^images/([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})\.([a-z]{3,4})$")
IMAGES = "images"
SNAPSHOTS = "snapshots"
QUARANTINE = "quarantine"
MANIFEST_NAME = "manifest.json"
PAGE_NAME = "index.html"
HISTORY_PAGE = "index.html"  # the store's own page, at its root
HISTORY_CACHE = "history.json"  # the headers it is made of (``history.snapshots``)
LAYOUT_MARKER = ".layout"  # written by the first run (migration.upgrade_store)
LAYOUT = "content-addressed v1\n"
INDEX_FILE = "index.sqlite"
INDEX_PREFIX = "index/"
LOCK_PREFIX = "locks/"
PRUNE_LOCK = "locks/prune"
# What a folder store keeps at its top; none may be a symbolic link.
OWN_ENTRIES = (
    *(IMAGES, SNAPSHOTS, QUARANTINE, ".staging", ".lock", INDEX_FILE),
    *(HISTORY_PAGE, HISTORY_CACHE),
)
# What an object store keeps at its top: what its snapshots and prunes write and delete.
OWN_PREFIXES = frozenset({IMAGES, "index", SNAPSHOTS, QUARANTINE, "locks"})


def stored_relpath(sha256: str, image_format: str) -> str:
    """Where the content ``sha256`` of Pillow format ``image_format`` is stored:
    ``images/ab/cd/<sha256>.jpg`` (two fan-out levels keep folders small)."""
    extension = EXTENSIONS.get(image_format.upper(), "bin")
    return f"{IMAGES}/{sha256[:2]}/{sha256[2:4]}/{sha256}.{extension}"


def is_stored_relpath(relpath: str, sha256: str | None = None) -> bool:
    """Whether ``relpath`` has the shape of a stored file (for ``sha256``, when given): what a
    manifest says is never trusted to point anywhere else."""
    match = STORED_PATH.match(relpath)
    if match is None:
        return False
    first, second, digest, _ = match.groups()
    return digest[:2] == first and digest[2:4] == second and sha256 in (None, digest)


def stored_sha256(relpath: str) -> str | None:
    """The content hash a stored path names; None for any other path."""
    match = STORED_PATH.match(relpath)
    return None if match is None else match.group(3)


# The store's root as a snapshot's page links to it (relative, so the page opens wherever the
# store is served or copied).
ROOT_FROM_PAGE = "../../"


def snapshot_folder(snapshot_id: str) -> str:
    return f"{SNAPSHOTS}/{snapshot_id}"


def manifest_relpath(snapshot_id: str) -> str:
    return f"{SNAPSHOTS}/{snapshot_id}/{MANIFEST_NAME}"


def page_relpath(snapshot_id: str) -> str:
    return f"{SNAPSHOTS}/{snapshot_id}/{PAGE_NAME}"


def snapshot_file(snapshot_id: str, name: str) -> str:
    """Another file of a snapshot's folder (its contact sheet, say)."""
    return f"{SNAPSHOTS}/{snapshot_id}/{name}"


def quarantine_folder(snapshot_id: str) -> str:
    return f"{QUARANTINE}/{snapshot_id}"


def quarantine_relpath(snapshot_id: str, name: str) -> str:
    return f"{QUARANTINE}/{snapshot_id}/{name}"
