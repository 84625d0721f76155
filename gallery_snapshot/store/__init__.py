"""Where a snapshot goes: a local folder (``Store``) or an object store (``ObjectStore``).

The few operations every step needs on either, chosen by the shape of ``out_dir``: a path, or
a URL such as ``s3://bucket/prefix``. Images themselves take each store's own path (a local
commit links a synced staging file; an object store gets one PUT of validated bytes).
"""

from __future__ import annotations

import os
from pathlib import Path

from gallery_snapshot.errors import ConfigError
from gallery_snapshot.object_store import ObjectStore, is_object_url, names_a_url
from gallery_snapshot.store import (
    Store,
    enclosing_store,
    nested_store,
    open_regular,
    write_atomically,
)

AnyStore = Store | ObjectStore


def open_store(out_dir: str) -> AnyStore:
    """The store ``out_dir`` names; ConfigError for a URL of no store this tool writes to, a
    folder inside another store, or nothing at all (not taken for the current folder)."""
    refuse_empty(out_dir)
    if not names_a_url(out_dir):
        store = Store(out_dir)
        if (outer := enclosing_store(store.root)) is not None:
            raise ConfigError(nested_store(str(store.root), str(outer)))
        return store
    try:
        return ObjectStore(out_dir)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def refuse_empty(out_dir: str) -> None:
    """ConfigError for an ``out_dir`` that names nothing: never the current folder, nor the
    folder a relative one would be under."""
    if not out_dir.strip():
        raise ConfigError(
            "no output location given: name a folder or an object store (s3://BUCKET/PREFIX)"
        )


def check_output(out_dir: str) -> None:
    """Fail with one line (StoreError) when ``out_dir`` cannot take a snapshot: a folder that
    cannot be written, an object store refusing our credentials or without its bucket."""
    store = open_store(out_dir)
    if isinstance(store, ObjectStore):
        store.check_access()
    else:
        store.prepare()


def has_snapshots(out_dir: str) -> bool:
    store = open_store(out_dir)
    if isinstance(store, ObjectStore):
        return any(True for _ in store.listing("snapshots/"))
    return (store.root / "snapshots").is_dir()


def location(out_dir: str, relpath: str) -> str:
    """What to show a person for ``relpath`` of the store: a path, or the object's URL."""
    if is_object_url(out_dir):
        return f"{out_dir.rstrip('/')}/{relpath}"
    return os.path.join(out_dir, *relpath.split("/"))


def write_file(out_dir: str, relpath: str, data: bytes) -> str:
    """Write a whole file of the store (a manifest, a page, a contact sheet) atomically;
    return its location."""
    store = open_store(out_dir)
    if isinstance(store, ObjectStore):
        return store.write(relpath, data)
    path = store.root / relpath
    write_atomically(path, data)
    return str(path)


def read_file(out_dir: str, relpath: str) -> bytes:
    """A file of the store (never read through a link on a local disk)."""
    store = open_store(out_dir)
    if isinstance(store, ObjectStore):
        return store.get(relpath)
    with open(open_regular(Path(store.root, relpath)), "rb") as handle:
        return handle.read()
