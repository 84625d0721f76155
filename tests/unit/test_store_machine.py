"""The store under random sequences of snapshots (some killed with SIGKILL), prunes, damage
and verifies, against loopback servers whose content the test controls (several hosts and
ports, the same base names, queries, PNGs listed as .jpg, the same bytes under two URLs)."""

from __future__ import annotations

import hashlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from gallery_snapshot.manifest import iter_manifests, stored_images
from gallery_snapshot.store import STORED_PATH
from gallery_snapshot.store.maintenance import prune_store, verify_store
from tests.support.content_server import ContentServer
from tests.support.images import image_bytes
from tests.support.pipeline import snapshot

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


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.base = Path(tempfile.mkdtemp(prefix="store-machine-"))
        self.out = self.base / "out"
        self.damaged: dict[Path, str] = {}  # file the test damaged -> the sha256 it should have
        _files.clear()

    def teardown(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)

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
        manifest = snapshot(self.out, self._urls_file(urls, seeds, pngs), formats=formats)
        for image in manifest["images"]:
            if image["status"] in ("downloaded", "reused"):
                assert (self.out / image["path"]).read_bytes() == _files[image["url"]]

    @rule(urls=st.lists(image_urls(), min_size=3, max_size=6), after=st.floats(0.3, 1.2))
    def kill_a_snapshot(self, urls: list[str], after: float) -> None:
        path = self._urls_file(urls, list(range(1, len(urls) + 1)), [False] * len(urls))
        victim = subprocess.Popen(
            [sys.executable, "-m", "tests.support.pipeline", str(self.out), str(path), "jpeg"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(after)
        victim.send_signal(signal.SIGKILL)
        victim.wait()

    @precondition(lambda self: (self.out / "snapshots").is_dir())
    @rule(keep_last=st.integers(1, 3), dry_run=st.booleans())
    def prune(self, keep_last: int, dry_run: bool) -> None:
        before = {p for p in (self.out / "images").rglob("*") if p.is_file()}
        report = prune_store(str(self.out), keep_last=keep_last, dry_run=dry_run)
        after = {p for p in (self.out / "images").rglob("*") if p.is_file()}
        assert (after == before) if dry_run else (len(before - after) == report.files_removed)

    @precondition(lambda self: (self.out / "snapshots").is_dir())
    @rule(data=st.data())
    def damage_a_stored_file(self, data: st.DataObject) -> None:
        referenced = sorted(self._referenced())
        if not referenced:
            return
        relpath, sha256 = data.draw(st.sampled_from(referenced))
        path = self.out / relpath
        path.chmod(0o644)
        path.write_bytes(b"bit rot" + path.read_bytes()[7:])
        self.damaged[path] = sha256

    @precondition(lambda self: (self.out / "snapshots").is_dir())
    @rule()
    def verify(self) -> None:
        report = verify_store(str(self.out))
        still_damaged = {
            path.relative_to(self.out).as_posix()
            for path, sha256 in self.damaged.items()
            if path.exists() and sha256_of(path) != sha256
        }
        named = {problem.split(" ", 1)[0] for problem in report.problems}
        assert named == still_damaged, report.problems

    def _referenced(self) -> set[tuple[str, str]]:
        return {
            (path, sha256)
            for _, manifest in iter_manifests(self.out)
            for path, sha256, _ in stored_images(manifest)
        }

    @invariant()
    def manifests_point_at_their_own_bytes(self) -> None:
        for relpath, sha256 in self._referenced():
            path = self.out / relpath
            if path in self.damaged and sha256_of(path) != self.damaged[path]:
                continue
            assert not path.is_symlink() and sha256_of(path) == sha256, relpath

    @invariant()
    def every_stored_file_is_named_by_its_content(self) -> None:
        for path in (self.out / "images").rglob("*"):
            match = STORED_PATH.match(path.relative_to(self.out).as_posix())
            if match and path not in self.damaged:
                assert sha256_of(path) == match.group(3)

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
