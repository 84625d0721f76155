"""Careful file operations of a folder store: names made safe, atomic writes, reads that never
follow a symbolic link, one filesystem sync per batch, and OS errors said in one line."""

from __future__ import annotations

import ctypes
import errno
import functools
import hashlib
import os
import re
import resource
import stat
import unicodedata
from pathlib import Path
from typing import Any

from gallery_snapshot.errors import StoreError

MAX_NAME_LENGTH = 120
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
# The shape of a name this module made; a name that only looks like one is hashed too, so an
# input can never take the name another input was given.
_HASHED = re.compile(r"-[0-9a-f]{12}(\.[A-Za-z0-9_-]{0,8})?$")


def safe_component(text: str, *, fallback: str) -> str:
    """``text`` as one safe path component: ASCII letters, digits, ``.``, ``_``, ``-``; not
    starting with a dot; at most ``MAX_NAME_LENGTH`` characters. A name that had to change
    gets a hash of the original appended, so two different inputs never share a name."""
    ascii_text = unicodedata.normalize("NFKC", text)
    cleaned = _UNSAFE.sub("_", ascii_text).lstrip(".")
    if cleaned == text and 0 < len(cleaned) <= MAX_NAME_LENGTH and not _HASHED.search(cleaned):
        return cleaned
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    stem, dot, ext = cleaned.rpartition(".")
    if not dot or len(ext) > 8:
        stem, ext = cleaned, ""
    stem = stem.strip("._-")[: MAX_NAME_LENGTH - 30] or fallback
    return f"{stem}-{digest}.{ext}" if ext else f"{stem}-{digest}"


def storage_error(doing: str, exc: OSError) -> StoreError:
    """``doing`` (say, "cannot write to DIR") failed with ``exc``, as one line. Running out of
    open files is said as such: it is no disk problem, whatever the call that met it."""
    if exc.errno == errno.EMFILE:
        limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        return StoreError(
            f"too many open files: this process may open {limit} (ulimit -n); raise the "
            f"limit or use fewer workers ({doing})"
        )
    return StoreError(f"{doing}: {exc.strerror}")


def sync_filesystem(path: Path) -> None:
    """Make everything written to ``path``'s filesystem durable: one ``syncfs`` for a whole
    batch instead of an fsync per file (``os.sync`` where there is no ``syncfs``)."""
    libc = _libc()
    if libc is None:
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.syncfs(fd) != 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error), str(path))
    finally:
        os.close(fd)


@functools.cache
def _libc() -> Any:
    # The C library the interpreter already has loaded. (``ctypes.util.find_library`` would
    # start ``ldconfig -p``, a fork of the whole flow process that Linux then counts as a child
    # as large as the flow, in the snapshot's peak memory.)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    return libc if hasattr(libc, "syncfs") else None


def open_regular(path: Path) -> int:
    """A descriptor of ``path`` for reading, refusing a symbolic link (ELOOP) and anything
    but a regular file (a FIFO would block the reader forever)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    return fd


def sha256_of(path: Path) -> str:
    """The sha256 of a regular file, never through a symbolic link."""
    digest = hashlib.sha256()
    with open(open_regular(path), "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise storage_error(f"cannot write {path}", exc) from None


def regular_entries(folder: Path, *, depth: int) -> list[Path]:
    """Files (and links) ``depth`` folder levels below ``folder``, never descending through a
    link."""
    levels = [folder] if folder.is_dir() and not folder.is_symlink() else []
    for _ in range(depth):
        levels = [sub for level in levels for sub in _real_folders(level)]
    found: list[Path] = []
    for level in levels:
        with os.scandir(level) as entries:
            found += [Path(e.path) for e in entries if not e.is_dir(follow_symlinks=False)]
    return sorted(found)


def _real_folders(folder: Path) -> list[Path]:
    with os.scandir(folder) as entries:
        return [Path(e.path) for e in entries if e.is_dir(follow_symlinks=False)]
