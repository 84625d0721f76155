"""The store: where snapshots go, behind one interface (``contract.SnapshotStore``) that every
caller uses. ``open_store(name)`` opens it once from the output's name: a folder
(``local.LocalStore``) or an object-store URL such as ``s3://bucket/prefix``
(``objects.ObjectStore``). Nothing outside this package asks which kind it holds.

    contract.py       the interface: files, images, the URL index, locks, staging
    layout.py         where everything lives, on every backend
    local.py          a folder: flock, hard links, one filesystem sync per batch
      files.py, staging.py, sqlite_index.py, migration.py   (its parts)
    objects.py        an object store (obstore): lock objects, one PUT per image
      object_client.py, object_index.py                     (its parts)
    maintenance.py    verify and prune, written once against the interface

A third backend is one module, plus its URL scheme where ``open_store`` chooses the class
(and in ``object_client.OBJECT_SCHEMES``). An S3-like service with its own SDK subclasses
``ObjectStore`` and replaces its plain object operations; the index, the locks, verify and
prune come with them::

    class VendorStore(ObjectStore):          # gallery_snapshot/store/vendor.py
        def put(self, key, data, *, create_only=False) -> str: ...    # the new version;
                                              # ObjectExists when create_only finds the key
        def get_versioned(self, key) -> tuple[bytes, str]: ...  # FileNotFoundError if none
        def listing(self, prefix) -> Iterator[ObjectInfo]: ...
        def delete(self, keys) -> None: ...
        def top_prefixes(self) -> set[str]: ...                  # {"snapshots/", ...}

Anything else implements ``SnapshotStore`` whole: ``name``, ``index`` (a ``UrlIndex``:
``lookup``, ``remember``, ``retain``), ``durable_puts``; files (``read``, ``write``,
``location``, ``snapshot_ids``, ``delete_snapshot``); images (``put_image``, ``check_stored``,
``confirm_reuse``, ``quarantine``, ``stored_files``, ``delete_images``, ``sync``); locks
(``snapshot_lock``, ``read_lock``, ``prune_lock``, ``confirm_alone``, ``settle``); staging
(``batch_staging``, ``staging_dir``, ``sweep_stale_staging``, ``kept_downloads``). The
contract test and the store machine (``tests/unit/test_store_contract.py``,
``test_store_machine.py``) run on every backend.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from gallery_snapshot.errors import ConfigError
from gallery_snapshot.store.contract import SnapshotStore, StoredFileProblem, nested_store
from gallery_snapshot.store.files import open_regular
from gallery_snapshot.store.layout import (
    SNAPSHOTS,
    STORED_PATH,
    is_stored_relpath,
    manifest_relpath,
    page_relpath,
    stored_relpath,
)
from gallery_snapshot.store.local import LocalStore, enclosing_store
from gallery_snapshot.store.object_client import check_object_url, is_object_url, names_a_url
from gallery_snapshot.store.objects import ObjectStore

__all__ = [
    "STORED_PATH",
    "SnapshotStore",
    "StoredFileProblem",
    "absolute_name",
    "checked_name",
    "is_stored_relpath",
    "manifest_relpath",
    "open_store",
    "page_relpath",
    "read_location",
    "store_named",
    "store_place",
    "stored_relpath",
]


def open_store(name: str) -> SnapshotStore:
    """The store ``name`` names; ConfigError for a URL of no store this tool writes to, a
    folder inside another store, or nothing at all (not taken for the current folder)."""
    refuse_empty(name)
    if not names_a_url(name):
        store = LocalStore(name)
        if (outer := enclosing_store(store.root)) is not None:
            raise ConfigError(nested_store(str(store.root), str(outer)))
        return store
    try:
        return ObjectStore(name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


@functools.lru_cache(maxsize=8)
def store_named(name: str) -> SnapshotStore:
    """The store ``name`` names, opened once per process: tasks take the store's name (plain
    data that travels to any worker) and every batch of a process shares one store and its
    client's connections."""
    return open_store(name)


def refuse_empty(name: str) -> None:
    """ConfigError for a ``name`` that names nothing: never the current folder, nor the
    folder a relative one would be under."""
    if not name.strip():
        raise ConfigError(
            "no output location given: name a folder or an object store (s3://BUCKET/PREFIX)"
        )


def absolute_name(name: str, *, base: str | None = None) -> str:
    """``name`` made independent of the current folder: a folder made absolute (a relative
    one, and ``~``, under ``base`` when given); a URL (or nothing, refused when opened) as it
    is."""
    if names_a_url(name) or not name.strip():
        return name
    return os.path.abspath(name) if base is None else _folder(name, base)


def checked_name(name: str) -> str:
    """``name`` as an output's name: a URL checked (ValueError, one line, for one of no store
    this tool writes to) and without its trailing slash; a folder as it is."""
    return check_object_url(name) if names_a_url(name) else name


def store_place(name: str, *, base: str | None) -> str:
    """The place ``name`` names, for comparing places (what a run may write to): an
    object-store URL with its scheme in lower case, or a normalized folder (a relative one
    under ``base``). ValueError saying what was expected: a valid object-store URL, or (with
    no ``base``) an absolute folder."""
    if is_object_url(name):
        try:
            url = name if base is not None else check_object_url(name)
        except ValueError as exc:
            raise ValueError(f"an object-store URL ({exc})") from None
        scheme, rest = url.split(":", 1)
        return f"{scheme.lower()}:{rest}"
    if base is None and not os.path.isabs(os.path.expanduser(name)):
        raise ValueError("an absolute folder")
    return _folder(name, base or "/")


def _folder(name: str, base: str) -> str:
    return os.path.normpath(os.path.join(base, os.path.expanduser(name)))


def read_location(location: str) -> bytes:
    """A file of a store by the location the store gave for it (``write`` returns it): an
    object's URL, or a path (never read through a link)."""
    base, _, rest = location.rpartition(f"/{SNAPSHOTS}/")
    if names_a_url(location) and base:
        return store_named(base).read(f"{SNAPSHOTS}/{rest}")
    with open(open_regular(Path(location)), "rb") as handle:
        return handle.read()


# A forked child has none of its parent's client threads: it opens its stores anew.
os.register_at_fork(after_in_child=store_named.cache_clear)
