"""The output folder: a store of images shared by every snapshot, per-snapshot staging and
quarantine, and the manifests.

    DIR/images/<host>/<name>             validated images, one file per image, shared
    DIR/snapshots/<id>/manifest.json     one manifest per snapshot
    DIR/quarantine/<id>/<name>           files that failed validation
    DIR/.staging/<id>/                   downloads waiting for validation (removed at the end)
    DIR/.staging/<id>.lock               held while snapshot <id> runs

Files reach ``images/`` only by an atomic rename after validation, so the store never holds a
partial or unchecked file, whatever kills the process. A staging folder whose lock nobody
holds belongs to a dead run and is swept by the next one.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import posixpath
import re
import shutil
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

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


@functools.lru_cache(maxsize=65536)  # asked twice per image: to reuse, then to store
def image_parts(url: str) -> tuple[str, str, str]:
    """Where the image at ``url`` is stored, relative to the output folder:
    ``("images", <host>, <file name>)``. The port is left out so that a server on a new port
    (the demo gallery picks a free one) maps to the same files."""
    parts = urlsplit(url)
    host = safe_component((parts.hostname or "").lower(), fallback="host")
    name = safe_component(posixpath.basename(unquote(parts.path)), fallback="image")
    if parts.query:
        # Different queries may be different images; keep them apart.
        name = safe_component(f"{name}?{parts.query}", fallback="image")
    return "images", host, name


class Store:
    """Paths and file operations of one output folder."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()

    def image_path(self, url: str) -> Path:
        folder, host, name = image_parts(url)
        # safe_component cannot escape; this is the belt to its braces (string checks only:
        # resolving the path costs syscalls per image on the hot path).
        if "/" in host + name or host.startswith(".") or name.startswith("."):
            raise StoreError(f"refusing a path outside the store for {url}")
        return self.root / folder / host / name

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def staging_dir(self, snapshot_id: str) -> Path:
        return self.root / ".staging" / snapshot_id

    def quarantine_dir(self, snapshot_id: str) -> Path:
        return self.root / "quarantine" / snapshot_id

    def manifest_path(self, snapshot_id: str) -> Path:
        return self.root / "snapshots" / snapshot_id / "manifest.json"

    def prepare(self) -> None:
        """Create the folders, or fail with a clear error when the folder is not writable."""
        try:
            for sub in ("images", "snapshots", ".staging"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
            probe = self.root / ".staging" / f".probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise StoreError(
                f"cannot write to the output folder {self.root}: {exc.strerror}"
            ) from None

    @contextlib.contextmanager
    def snapshot_lock(self, snapshot_id: str) -> Iterator[Path]:
        """Hold snapshot ``snapshot_id``'s lock and staging folder; remove both at the end."""
        self.prepare()
        lock_path = self.root / ".staging" / f"{snapshot_id}.lock"
        with open(lock_path, "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            staging = self.staging_dir(snapshot_id)
            staging.mkdir(exist_ok=True)
            try:
                yield staging
            finally:
                shutil.rmtree(staging, ignore_errors=True)
                lock_path.unlink(missing_ok=True)

    def sweep_stale_staging(self) -> list[str]:
        """Remove staging folders of runs that died; returns their snapshot ids."""
        swept: list[str] = []
        staging_root = self.root / ".staging"
        if not staging_root.is_dir():
            return swept
        for folder in staging_root.iterdir():
            if not folder.is_dir():
                continue
            lock_path = staging_root / f"{folder.name}.lock"
            try:
                with open(lock_path, "rb") as lock:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    shutil.rmtree(folder, ignore_errors=True)
                    lock_path.unlink(missing_ok=True)
            except FileNotFoundError:
                shutil.rmtree(folder, ignore_errors=True)
            except BlockingIOError:
                continue  # a live run holds it
            swept.append(folder.name)
        return swept

    def promote(self, staged: Path, url: str) -> Path:
        """Move a validated file into the store atomically. The downloader fsynced it already
        (in its threads, where the wait overlaps other downloads)."""
        final = self.image_path(url)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, final)
        return final

    def quarantine(self, staged: Path, snapshot_id: str) -> Path:
        target = self.quarantine_dir(snapshot_id) / staged.name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, target)
        return target


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
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
        raise StoreError(f"cannot write {path}: {exc.strerror}") from None
