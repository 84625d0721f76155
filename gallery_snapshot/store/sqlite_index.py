"""The URL index of a folder store: which stored content each image URL gave, so a stored
image is reused without a request.

An SQLite file in the output folder (``index.sqlite``, WAL mode): embedded, safe for several
processes at once, and a primary-key lookup stays fast at millions of URLs. It holds no truth
of its own: every row comes from a validated image, the manifests record the same facts, and
``rebuild`` makes the index anew from them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from gallery_snapshot.errors import StoreError
from gallery_snapshot.models import StoredImage
from gallery_snapshot.selection import UrlProblem, normalize_url
from gallery_snapshot.store.contract import IndexEntry
from gallery_snapshot.store.files import storage_error

_SCHEMA = """
CREATE TABLE IF NOT EXISTS urls (
    url TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    format TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS urls_by_sha256 ON urls (sha256);
"""
_COLUMNS = "sha256, format, bytes, width, height"
_LOCK_TIMEOUT = 60.0
# SQLite's default limit on bound parameters is 32766; stay far below it.
_CHUNK = 500


def url_key(url: str) -> str | None:
    """An image's identity for reuse: its whole normalized URL (host, port, path, query).
    None for a URL that does not parse: never requested, so never indexed nor looked up,
    wherever it comes from (an old manifest, say)."""
    try:
        return normalize_url(url)
    except UrlProblem:
        return None


def _use_wal(connection: sqlite3.Connection) -> None:
    """Put the index in WAL mode (kept in the file, so once per index). Switching a new
    database does not wait on the busy handler: a connection that opened it at the same
    moment makes it fail at once with "locked", so try again for as long as the timeout."""
    deadline = time.monotonic() + _LOCK_TIMEOUT
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class DamagedIndex(StoreError):
    """The index file is not a usable SQLite database."""


class SqliteIndex:
    """The URL index of one output folder. Opens a connection per call, so an instance is
    cheap, plain, and safe to use from any thread or process."""

    batch_lookups = True

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            connection = sqlite3.connect(self.path, timeout=_LOCK_TIMEOUT, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._explain(exc, opening=True) from None
        try:
            _use_wal(connection)
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.executescript(_SCHEMA)
            yield connection
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise StoreError(
                    f"the URL index {self.path} stayed locked by another process for 60 s"
                ) from None
            raise self._explain(exc) from None
        except sqlite3.DatabaseError as exc:
            raise DamagedIndex(self._explain(exc)) from None
        finally:
            connection.close()

    def create(self) -> None:
        """Create the (empty) index: once, in one process, before tasks use it. Switching a
        new database to WAL mode does not wait for a lock held by another process, so two
        workers creating it at once could fail with "database is locked"."""
        with self._connect():
            pass

    def is_damaged(self) -> bool:
        """Whether the index file is not a usable database (a cheap probe, for start-up)."""
        try:
            with self._connect() as connection:
                connection.execute("SELECT 1 FROM urls LIMIT 1").fetchall()
        except DamagedIndex:
            return True
        return False

    def _explain(self, error: sqlite3.Error, *, opening: bool = False) -> StoreError:
        """SQLite says "disk I/O error" for a full disk, "unable to open database file" when
        the process may open no more files; a small write next to the index finds the real
        cause."""
        probe = self.path.with_name(f".probe-{os.getpid()}")
        try:
            probe.write_bytes(bytes(65536))
        except OSError as exc:
            return storage_error(f"cannot write to {self.path.parent}", exc)
        finally:
            probe.unlink(missing_ok=True)
        if opening:
            if _few_files_left():  # the probe took one; SQLite needs three (WAL, shared memory)
                out_of_files = OSError(errno.EMFILE, os.strerror(errno.EMFILE))
                return storage_error(f"cannot open the URL index {self.path}", out_of_files)
            return StoreError(f"cannot open the URL index {self.path}: {error}")
        return StoreError(
            f"the URL index {self.path} is unusable ({error}): remove it, and the next run "
            "rebuilds it from the manifests"
        )

    def lookup(self, urls: Iterable[str]) -> dict[str, StoredImage]:
        """The stored images of those of ``urls`` the index knows, by URL as given."""
        by_key: dict[str, list[str]] = {}
        for url in urls:
            if (key := url_key(url)) is not None:
                by_key.setdefault(key, []).append(url)
        keys = list(by_key)
        found: dict[str, StoredImage] = {}
        with self._connect() as connection:
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = connection.execute(
                    f"SELECT url, {_COLUMNS} FROM urls WHERE url IN ({marks})", chunk
                )
                for key, sha256, image_format, size, width, height in rows:
                    image = StoredImage(
                        sha256=sha256, format=image_format, bytes=size, width=width, height=height
                    )
                    found.update(dict.fromkeys(by_key[key], image))
        return found

    def remember(self, entries: Iterable[IndexEntry]) -> None:
        """Record where each URL's image is stored, in one transaction."""
        rows = [
            (key, e.image.sha256, e.image.format, e.image.bytes, e.image.width, e.image.height)
            for e in entries
            if (key := url_key(e.url)) is not None
        ]
        if not rows:
            return
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany(
                f"INSERT OR REPLACE INTO urls (url, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", rows
            )
            connection.execute("COMMIT")

    def retain(self, sha256s: set[str]) -> int:
        """Forget every URL whose content is not in ``sha256s``; return how many."""
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("CREATE TEMP TABLE keep (sha256 TEXT PRIMARY KEY) WITHOUT ROWID")
            connection.executemany("INSERT INTO keep VALUES (?)", ((s,) for s in sha256s))
            cursor = connection.execute(
                "DELETE FROM urls WHERE sha256 NOT IN (SELECT sha256 FROM keep)"
            )
            connection.execute("COMMIT")
            return cursor.rowcount

    def count(self) -> int:
        with self._connect() as connection:
            (rows,) = connection.execute("SELECT COUNT(*) FROM urls").fetchone()
            return int(rows)


def _few_files_left(needed: int = 3) -> bool:
    """Whether this process may open fewer than ``needed`` more files (Linux /proc)."""
    try:
        open_now = len(os.listdir("/proc/self/fd"))
    except OSError as exc:
        return exc.errno == errno.EMFILE
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0] - open_now < needed
