"""The store under random sequences of snapshots (some killed with SIGKILL), prunes, damage
and verifies, against loopback servers whose content the test controls (several hosts and
ports, the same base names, queries, PNGs listed as .jpg, the same bytes under two URLs).
The same machine runs on both backends: a local folder, and an object store on the loopback
S3 server (moto, with authentication on)."""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from gallery_snapshot.errors import StoreError
from gallery_snapshot.manifest import iter_manifests, stored_images
from gallery_snapshot.store import STORED_PATH
from gallery_snapshot.store.maintenance import prune_store, verify_store
from tests.support.content_server import ContentServer
from tests.support.images import image_bytes
from tests.support.pipeline import snapshot
from tests.support.s3_server import S3Server

PATHS = ["/a.jpg", "/red/a.jpg", "/blue/a.jpg", "/a.png", "/a.jpg?v=2", "/b%20c.jpg", "/b_c.jpg"]
ROOT = Path(__file__).resolve().parents[2]
_servers: list[ContentServer] = []
_files: dict[str, bytes] = {}


def servers() -> list[ContentServer]:
    """Two servers for the whole module (a server per example would cost more than it)."""
    if not _servers:
        import threading

        for _ in range(2):
            server = ContentServer(_files)
            server.latency = 0.01
            threading.Thread(target=server.serve_forever, daemon=True).start()
            _servers.append(server)
    return _servers


@st.composite
def image_urls(draw: st.DrawFn) -> str:
    server = draw(st.sampled_from(servers()))
    host = draw(st.sampled_from(["127.0.0.1", "localhost"]))
    return f"http://{host}:{server.port}{draw(st.sampled_from(PATHS))}"


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FolderBackend:
    """The store in ``base/out``, read and damaged as files."""

    def __init__(self, base: Path) -> None:
        self.out = base / "out"
        self.name = str(self.out)
        self.env: dict[str, str] = {}

    def has_snapshots(self) -> bool:
        # A manifest, not the folder: a snapshot killed after it prepared the store leaves
        # snapshots/ with no manifest in it, and verify rightly says the store holds none.
        return any((self.out / "snapshots").glob("*/manifest.json"))

    def images(self) -> dict[str, bytes]:
        """Every file under images/ (links too, as the bytes they lead to): relpath -> bytes."""
        return {
            path.relative_to(self.out).as_posix(): path.read_bytes()
            for path in (self.out / "images").rglob("*")
            if path.is_file()
        }

    def read(self, relpath: str) -> bytes | None:
        path = self.out / relpath
        return None if path.is_symlink() or not path.is_file() else path.read_bytes()

    def write(self, relpath: str, data: bytes) -> None:
        path = self.out / relpath
        path.chmod(0o644)
        path.write_bytes(data)


_s3: list[S3Server] = []


class BucketBackend:
    """The store in a fresh bucket of the loopback S3 server (one server for the module)."""

    def __init__(self, base: Path) -> None:
        if not _s3:
            server = S3Server(Path(tempfile.mkdtemp(prefix="store-machine-s3-")) / "moto.log")
            _s3.append(server.__enter__())
            atexit.register(server.stop)
        self.server = _s3[0]
        self.bucket = f"machine-{uuid.uuid4().hex[:12]}"
        self.server.create_bucket(self.bucket)
        self.name = f"s3://{self.bucket}/out"
        self.env = self.server.env()
        self.client: Any = self.server.s3_client()

    def has_snapshots(self) -> bool:
        keys = self.server.objects(self.bucket, "out/snapshots/")
        return any(key.endswith("/manifest.json") for key in keys)

    def images(self) -> dict[str, bytes]:
        keys = self.server.objects(self.bucket, "out/images/")
        return {key.removeprefix("out/"): self.server.get(self.bucket, key) for key in keys}

    def read(self, relpath: str) -> bytes | None:
        try:
            return self.server.get(self.bucket, f"out/{relpath}")
        except self.client.exceptions.NoSuchKey:
            return None

    def write(self, relpath: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=f"out/{relpath}", Body=data)


class StoreMachine(RuleBasedStateMachine):
    backend_class: Any = FolderBackend

    def __init__(self) -> None:
        super().__init__()
        self.base = Path(tempfile.mkdtemp(prefix="store-machine-"))
        self.store = self.backend_class(self.base)
        self.saved_env = {name: os.environ.get(name) for name in self.store.env}
        os.environ.update(self.store.env)
        self.damaged: dict[str, str] = {}  # file the test damaged -> the sha256 it should have
        self.killed = False  # a killed snapshot's lock object may still be live
        _files.clear()

    def teardown(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)
        for name, value in self.saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def _urls_file(self, urls: list[str], seeds: list[int], pngs: list[bool]) -> Path:
        for url, seed, png in zip(urls, seeds, pngs, strict=True):
            # A URL keeps its content; seeds repeat, so some URLs share their bytes.
            _files.setdefault(url, image_bytes(seed, "PNG" if png else "JPEG"))
        path = self.base / "urls.txt"
        path.write_text("\n".join(urls) + "\n")
        return path

    @rule(
        data=st.data(),
        formats=st.sampled_from([("jpeg",), ("jpeg", "png")]),
    )
    def take_snapshot(self, data: st.DataObject, formats: tuple[str, ...]) -> None:
        urls = data.draw(st.lists(image_urls(), min_size=1, max_size=6))
        seeds = data.draw(st.lists(st.integers(1, 5), min_size=len(urls), max_size=len(urls)))
        pngs = data.draw(st.lists(st.booleans(), min_size=len(urls), max_size=len(urls)))
        manifest = snapshot(self.store.name, self._urls_file(urls, seeds, pngs), formats=formats)
        for image in manifest["images"]:
            if image["status"] in ("downloaded", "reused"):
                assert self.store.read(image["path"]) == _files[image["url"]]

    @rule(urls=st.lists(image_urls(), min_size=3, max_size=6), after=st.floats(0.3, 1.2))
    def kill_a_snapshot(self, urls: list[str], after: float) -> None:
        path = self._urls_file(urls, list(range(1, len(urls) + 1)), [False] * len(urls))
        victim = subprocess.Popen(
            [sys.executable, "-m", "tests.support.pipeline", self.store.name, str(path), "jpeg"],
            cwd=ROOT,
            env={**os.environ, **self.store.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(after)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        self.killed = True

    @precondition(lambda self: self.store.has_snapshots())
    @rule(keep_last=st.integers(1, 3), dry_run=st.booleans())
    def prune(self, keep_last: int, dry_run: bool) -> None:
        before = set(self.store.images())
        try:
            report = prune_store(self.store.name, keep_last=keep_last, dry_run=dry_run)
        except StoreError as exc:
            # An object store's killed run leaves its lock, live for minutes: prune waits.
            assert self.killed and "in progress" in str(exc), exc
            assert set(self.store.images()) == before
            return
        after = set(self.store.images())
        assert (after == before) if dry_run else (len(before - after) == report.files_removed)

    @precondition(lambda self: self.store.has_snapshots())
    @rule(data=st.data())
    def damage_a_stored_file(self, data: st.DataObject) -> None:
        referenced = sorted(self._referenced())
        if not referenced:
            return
        relpath, sha256 = data.draw(st.sampled_from(referenced))
        content = self.store.read(relpath)
        assert content is not None
        self.store.write(relpath, b"bit rot" + content[7:])
        self.damaged[relpath] = sha256

    @precondition(lambda self: self.store.has_snapshots())
    @rule()
    def verify(self) -> None:
        report = verify_store(self.store.name)
        still_damaged = {
            relpath
            for relpath, sha256 in self.damaged.items()
            if (content := self.store.read(relpath)) is not None and sha256_of(content) != sha256
        }
        named = {problem.split(" ", 1)[0] for problem in report.problems}
        assert named == still_damaged, report.problems

    def _referenced(self) -> set[tuple[str, str]]:
        return {
            (path, sha256)
            for _, manifest in iter_manifests(self.store.name)
            for path, sha256, _ in stored_images(manifest)
        }

    @invariant()
    def manifests_point_at_their_own_bytes(self) -> None:
        for relpath, sha256 in self._referenced():
            content = self.store.read(relpath)  # None for a link: never a stored file
            if relpath in self.damaged and content and sha256_of(content) != self.damaged[relpath]:
                continue
            assert content is not None and sha256_of(content) == sha256, relpath

    @invariant()
    def every_stored_file_is_named_by_its_content(self) -> None:
        for relpath, content in self.store.images().items():
            match = STORED_PATH.match(relpath)
            if match and relpath not in self.damaged:
                assert sha256_of(content) == match.group(3)

    @invariant()
    def nothing_is_written_outside_the_output_folder(self) -> None:
        assert {p.name for p in self.base.iterdir()} <= {"out", "urls.txt"}


StoreMachine.TestCase.settings = settings(
    max_examples=6,
    stateful_step_count=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_store_machine = StoreMachine.TestCase


class BucketStoreMachine(StoreMachine):
    backend_class = BucketBackend


BucketStoreMachine.TestCase.settings = StoreMachine.TestCase.settings
test_bucket_store_machine = BucketStoreMachine.TestCase
