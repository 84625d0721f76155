"""Bringing an output folder up to date before use: the content-addressed layout and the URL
index.

Folders made before the content-addressed store kept ``images/<host>/<name>``; on first use
their files are linked under their content's name, the manifests rewritten to point there,
and the old names removed; nothing stored is lost. A missing URL index is rebuilt from the
manifests, which remain the record of truth.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from gallery_snapshot.manifest import encode_manifest, iter_manifests
from gallery_snapshot.models import STORED, ImageRecord, StoredImage
from gallery_snapshot.store.contract import IndexEntry
from gallery_snapshot.store.files import sha256_of, write_atomically
from gallery_snapshot.store.layout import (
    IMAGES,
    LAYOUT,
    LAYOUT_MARKER,
    is_stored_relpath,
    manifest_relpath,
)
from gallery_snapshot.store.local import LocalStore

logger = logging.getLogger(__name__)


def needs_migration(store: LocalStore) -> bool:
    """Whether ``store`` holds files of the old layout that were never migrated."""
    return not (store.root / LAYOUT_MARKER).is_file() and any(_legacy_files(store))


def upgrade_store(store: LocalStore) -> None:
    """Migrate a folder of the old layout and rebuild a missing or damaged URL index (under
    the store's exclusive lock); a no-op for a folder that is up to date."""
    marker = store.root / LAYOUT_MARKER
    catalog = store.index
    if marker.is_file() and store.index_path.is_file() and not catalog.is_damaged():
        return
    with store.store_lock(exclusive=True):
        if not marker.is_file():
            _migrate_legacy_layout(store)
            write_atomically(marker, LAYOUT.encode())
        if store.index_path.is_file() and catalog.is_damaged():
            aside = store.index_path.with_name(f"index.sqlite.damaged-{int(time.time())}")
            for suffix in ("-wal", "-shm"):  # SQLite would replay them into the new index
                store.index_path.with_name(f"index.sqlite{suffix}").unlink(missing_ok=True)
            os.replace(store.index_path, aside)
            logger.warning("the URL index was damaged: kept as %s, rebuilt from manifests", aside)
        if not store.index_path.is_file():
            rebuild_index(store)


def rebuild_index(store: LocalStore) -> int:
    """Make the URL index anew from the manifests (oldest first, so the latest wins)."""
    entries: dict[str, StoredImage] = {}
    for _, manifest in iter_manifests(store):
        for image in manifest.stored():
            if (stored := _stored_image(image)) is not None:
                entries[image.url] = stored
    store.index.create()
    store.index.remember(IndexEntry(url, image) for url, image in entries.items())
    if entries:
        logger.info(
            "rebuilt the URL index of %s from its manifests: %d URLs", store.root, len(entries)
        )
    return len(entries)


def _stored_image(image: ImageRecord) -> StoredImage | None:
    """What the index keeps of a stored image; None for one recorded without all of it."""
    if image.path is None or not is_stored_relpath(image.path, image.sha256):
        return None
    try:
        return StoredImage.model_validate(image.model_dump(include=set(StoredImage.model_fields)))
    except ValueError:
        return None


def _legacy_files(store: LocalStore) -> Iterator[Path]:
    """Regular files of the old layout: ``images/<host>/<name>`` (never through a link)."""
    images = store.root / IMAGES
    if not images.is_dir():
        return
    for host in images.iterdir():
        if host.is_dir() and not host.is_symlink():
            for path in host.iterdir():
                if path.is_file() and not path.is_symlink():
                    yield path


def _migrated(store: LocalStore, image: ImageRecord, linked: dict[str, str]) -> ImageRecord:
    """``image``, stored at a path of the old layout, as the content-addressed store holds it
    (``linked``: old paths already linked, to their new ones); failed if the old layout had
    overwritten its file."""
    old = str(image.path)
    sha256 = sha256_of(store.root / old)
    if sha256 != image.sha256:
        # The old layout let two URLs share a name: this image was overwritten.
        error = (
            "lost before migration: its stored file was overwritten by another image with the "
            "same name"
        )
        return image.model_copy(update={"status": "failed", "path": None, "error": error})
    if old not in linked:
        linked[old] = store.commit(
            store.root / old, sha256=sha256, image_format=str(image.format), keep_source=True
        )
    return image.model_copy(update={"path": linked[old]})


def _migrate_legacy_layout(store: LocalStore) -> None:
    legacy = {store.relative(path) for path in _legacy_files(store)}
    if not legacy:
        return
    linked: dict[str, str] = {}  # old relative path -> new one
    rewritten = lost = 0
    for _, manifest in iter_manifests(store):
        images, changed = [], False
        for image in manifest.images():
            if image.status in STORED and image.path in legacy:
                changed = True
                image = _migrated(store, image, linked)
                lost += image.status == "failed"
            images.append(image)
        if changed:
            data = encode_manifest(manifest.with_images(images))
            store.write(manifest_relpath(manifest.snapshot_id), data)
            rewritten += 1
    for old in linked:
        (store.root / old).unlink()
    for host in {(store.root / old).parent for old in legacy}:
        with contextlib.suppress(OSError):  # not empty: files no manifest names stay
            host.rmdir()
    left = len(legacy) - len(linked)
    logger.warning(
        "migrated %s to the content-addressed store: %d files, %d manifests rewritten%s%s",
        store.root,
        len(linked),
        rewritten,
        f"; {lost} images had been overwritten by the old layout" if lost else "",
        f"; left {left} files no manifest names where they were" if left else "",
    )
