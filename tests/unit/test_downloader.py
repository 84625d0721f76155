import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from gallery_snapshot.demo_gallery import DemoGallery
from gallery_snapshot.downloader import DownloadOptions, fetch_batch
from gallery_snapshot.http import Backoff
from gallery_snapshot.models import FetchResult, Link, StoredImage
from gallery_snapshot.store.contract import IndexEntry
from gallery_snapshot.store.local import LocalStore as Store
from tests.support.content_server import ContentServer, content_servers

SNAPSHOT = "snap-1"


def options(gallery: DemoGallery, out: Path, **extra: object) -> DownloadOptions:
    values: dict[str, object] = {
        "out_dir": str(out),
        "snapshot_id": SNAPSHOT,
        "allowed_hosts": frozenset({gallery.image_host}),
        "timeout": 5.0,
        "attempts": 3,
        "backoff": Backoff(base=0.0, cap=0.0, jitter=0.0),
        **extra,
    }
    return DownloadOptions(**values)  # type: ignore[arg-type]


def link(gallery: DemoGallery, name: str, rank: int = 1) -> Link:
    return Link(
        url=f"{gallery.base_url}/{name}", id=name.split(".")[0], rank=rank, type="image/jpeg"
    )


def fetch(gallery: DemoGallery, out: Path, *names: str, **extra: object) -> list[FetchResult]:
    links = [link(gallery, name, rank) for rank, name in enumerate(names, start=1)]
    return fetch_batch(links, options(gallery, out, **extra))


def test_downloads_into_staging_with_hash_and_size(gallery: DemoGallery, out_dir: Path) -> None:
    [result] = fetch(gallery, out_dir, "Jpg001.jpg")
    assert result.status == "fetched"
    staged = Path(result.path or "")
    assert staged.parent == Store(out_dir).staging_dir(SNAPSHOT)
    assert result.bytes == staged.stat().st_size > 1000
    assert not list((out_dir / "images").rglob("*.jpg"))  # not validated yet


def remember_stored(out_dir: Path, url: str, data: bytes) -> Path:
    """Put ``data`` in the store as ``url``'s image, as an earlier snapshot would have."""
    store = Store(out_dir)
    staged = out_dir / "earlier"
    staged.parent.mkdir(parents=True, exist_ok=True)
    staged.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    relpath = store.commit(staged, sha256=sha, image_format="JPEG")
    image = StoredImage(sha256=sha, format="JPEG", bytes=len(data), width=1, height=1)
    store.index.remember([IndexEntry(url, image)])
    return store.root / relpath


def test_stored_images_are_reused_without_a_request(gallery: DemoGallery, out_dir: Path) -> None:
    remember_stored(out_dir, f"{gallery.base_url}/Jpg001.jpg", b"stored earlier")
    [result] = fetch(gallery, out_dir, "Jpg001.jpg")
    assert result.status == "reused" and result.bytes == 14
    assert result.stored is not None and result.stored.format == "JPEG"
    assert gallery.state.requests_for("/Jpg001.jpg") == []


def test_a_damaged_stored_copy_is_not_reused(gallery: DemoGallery, out_dir: Path) -> None:
    stored = remember_stored(out_dir, f"{gallery.base_url}/Jpg001.jpg", b"stored earlier")
    stored.chmod(0o644)
    stored.write_bytes(b"stored EARLIER")  # same size, other bytes
    [result] = fetch(gallery, out_dir, "Jpg001.jpg")
    assert result.status == "fetched"
    assert gallery.state.requests_for("/Jpg001.jpg") == [200]


def test_deleted_and_missing_images_are_gone_without_retries(
    gallery: DemoGallery, out_dir: Path
) -> None:
    deleted, missing = fetch(gallery, out_dir, "Deleted.jpg", "Missing.jpg")
    assert (deleted.status, deleted.error) == (
        "gone",
        "redirected to the removed-image placeholder",
    )
    assert (missing.status, missing.error) == ("gone", "HTTP 404")
    assert gallery.state.requests_for("/Deleted.jpg") == [302]
    assert gallery.state.requests_for("/removed.png") == []  # the placeholder is never fetched


def test_transient_failures_are_retried_per_image(gallery: DemoGallery, out_dir: Path) -> None:
    gallery.state.faults["/Jpg001.jpg"] = ["500", "reset", "short-body"]
    gallery.state.faults["/Jpg002.jpg"] = ["429+retry-after=0"]
    first, second = fetch(gallery, out_dir, "Jpg001.jpg", "Jpg002.jpg", attempts=4)
    assert first.status == second.status == "fetched"
    assert gallery.state.requests_for("/Jpg001.jpg") == ["500", "reset", "short-body", 200]
    assert gallery.state.requests_for("/Jpg002.jpg") == ["429+retry-after=0", 200]


def test_gives_up_after_the_attempts(gallery: DemoGallery, out_dir: Path) -> None:
    [result] = fetch(gallery, out_dir, "Failing.jpg", attempts=2)
    assert result.status == "failed"
    assert result.error == "gave up after 2 attempts: HTTP 503"
    assert list(Store(out_dir).staging_dir(SNAPSHOT).iterdir()) == []


def test_redirects_to_foreign_hosts_are_not_followed(gallery: DemoGallery, out_dir: Path) -> None:
    gallery.state.faults["/Jpg001.jpg"] = ["redirect=http://169.254.169.254/latest/meta-data"]
    [result] = fetch(gallery, out_dir, "Jpg001.jpg")
    assert (result.status, result.error) == (
        "failed",
        "redirect to host 169.254.169.254 is not allowed",
    )


def test_bodies_over_max_bytes_are_cut_off(gallery: DemoGallery, out_dir: Path) -> None:
    [result] = fetch(gallery, out_dir, "Jpg001.jpg", max_bytes=1000)
    assert result.status == "failed" and "larger than max-bytes" in (result.error or "")
    assert list(Store(out_dir).staging_dir(SNAPSHOT).iterdir()) == []


def test_many_threads_share_one_pool_and_keep_link_order(
    gallery: DemoGallery, out_dir: Path
) -> None:
    names = [f"Jpg{n:03d}.jpg" for n in range(1, 15)]
    results = fetch(gallery, out_dir, *names, threads=8)
    assert [result.link.id for result in results] == [name[:6] for name in names]
    assert {result.status for result in results} == {"fetched"}


def test_whole_downloads_of_a_dead_run_are_adopted_not_fetched_again(
    gallery: DemoGallery, out_dir: Path
) -> None:
    names = ["Jpg001.jpg", "Jpg002.jpg", "Jpg003.jpg"]
    dead = fetch(gallery, out_dir, *names)  # downloaded into staging, then the run "died"
    assert {result.status for result in dead} == {"fetched"}
    torn = Store(out_dir).staging_dir(SNAPSHOT) / "3-Jpg003.jpg"
    torn.write_bytes(torn.read_bytes()[:100])  # a file the journal says is whole, but is not

    store = Store(out_dir)
    with store.snapshot_lock("next") as staging:
        assert store.sweep_stale_staging() == [SNAPSHOT]
        links = [link(gallery, name, rank) for rank, name in enumerate(names, start=1)]
        results = fetch_batch(links, options(gallery, out_dir, snapshot_id="next"))
        assert [result.status for result in results] == ["fetched"] * 3
        assert [Path(r.path or "").parent for r in results] == [staging] * 3
        assert [r.sha256 for r in results] == [r.sha256 for r in dead]
    # Adopted without a request; only the damaged one was fetched again.
    assert gallery.state.requests_for("/Jpg001.jpg") == [200]
    assert gallery.state.requests_for("/Jpg003.jpg") == [200, 200]
    assert list((out_dir / ".staging").iterdir()) == []  # the dead run's files are gone now


class Cancelled(BaseException):
    """What a run ending early raises through the store's lock (Prefect's TerminationSignal,
    a crash's SystemExit)."""


def test_a_run_ending_early_keeps_its_whole_downloads_for_the_next(
    gallery: DemoGallery, out_dir: Path
) -> None:
    names = ["Jpg001.jpg", "Jpg002.jpg", "Jpg003.jpg"]
    store = Store(out_dir)
    with pytest.raises(Cancelled), store.snapshot_lock(SNAPSHOT):
        assert {result.status for result in fetch(gallery, out_dir, *names)} == {"fetched"}
        raise Cancelled
    assert len(list((out_dir / ".staging").rglob("*.jpg"))) == 3  # not emptied
    assert store.kept_downloads(SNAPSHOT) == 3
    assert not store.staging_dir(SNAPSHOT).exists()

    with store.snapshot_lock("next"):
        links = [link(gallery, name, rank) for rank, name in enumerate(names, start=1)]
        results = fetch_batch(links, options(gallery, out_dir, snapshot_id="next"))
    assert [result.status for result in results] == ["fetched"] * 3
    for name in names:  # adopted, not fetched again
        assert gallery.state.requests_for(f"/{name}") == [200]
    assert list((out_dir / ".staging").iterdir()) == []


def test_nothing_is_adopted_through_a_link_or_beyond_max_bytes(
    gallery: DemoGallery, out_dir: Path, tmp_path: Path
) -> None:
    [dead] = fetch(gallery, out_dir, "Jpg001.jpg")
    assert dead.bytes is not None and dead.sha256 is not None
    # A planted staging "folder" that is a link to files outside, journal and all.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(b"secret")
    entry = {"url": f"{gallery.base_url}/Jpg002.jpg", "file": "secret.jpg", "bytes": 6}
    entry["sha256"] = hashlib.sha256(b"secret").hexdigest()
    (outside / "received-x.jsonl").write_text(json.dumps(entry) + "\n")
    (out_dir / ".staging" / "planted").symlink_to(outside)

    store = Store(out_dir)
    with store.snapshot_lock("next"):
        assert sorted(store.sweep_stale_staging()) == [SNAPSHOT]
        links = [link(gallery, "Jpg001.jpg", 1), link(gallery, "Jpg002.jpg", 2)]
        small = options(gallery, out_dir, snapshot_id="next", max_bytes=dead.bytes - 1)
        first, second = fetch_batch(links, small)
    assert (outside / "secret.jpg").read_bytes() == b"secret"
    assert first.status == "failed" and "larger than max-bytes" in (first.error or "")
    # Fetched from its server, never taken from the planted folder.
    assert gallery.state.requests_for("/Jpg002.jpg") == [200]
    assert second.sha256 != entry["sha256"]


@contextmanager
def slow_files(count: int) -> Iterator[tuple[ContentServer, list[Link]]]:
    """A loopback server answering ``count`` small files after 50 ms each, and their links."""
    with content_servers(1, {}) as [server]:
        base = f"http://127.0.0.1:{server.port}"
        server.files.update({f"{base}/{n}.jpg": b"x" * 100 for n in range(count)})
        server.latency = 0.05
        urls = sorted(server.files)
        yield server, [Link(url=url, id=str(rank), rank=rank) for rank, url in enumerate(urls, 1)]


def threads_of(out_dir: Path, threads: int, snapshot: str = SNAPSHOT) -> DownloadOptions:
    return DownloadOptions(
        out_dir=str(out_dir),
        snapshot_id=snapshot,
        allowed_hosts=frozenset({"127.0.0.1"}),
        threads=threads,
    )


def test_batches_running_at_once_share_the_process_download_threads(out_dir: Path) -> None:
    # A batch's end must not idle threads while another batch waits: so batches in one process
    # draw on one set of threads, and together never exceed it (each had its own: 2 x 4 here).
    with slow_files(12) as (server, links), ThreadPoolExecutor(2) as flow:
        batches = [links[0::2], links[1::2]]
        results = list(flow.map(lambda batch: fetch_batch(batch, threads_of(out_dir, 4)), batches))
    assert [len(batch) for batch in results] == [6, 6]
    assert {result.status for batch in results for result in batch} == {"fetched"}
    assert server.most_active == 4


def test_snapshots_asking_for_other_thread_counts_keep_their_own(out_dir: Path) -> None:
    # Two snapshots in one process (a test harness, a Dask worker) with --workers 2 and 3: each
    # keeps its threads, none fails on a pool another one replaced, and never more than 2 + 3.
    with slow_files(40) as (server, links), ThreadPoolExecutor(8) as flow:
        jobs = [
            flow.submit(fetch_batch, links[start : start + 5], threads_of(out_dir, 2 + start % 2))
            for start in range(0, 40, 5)
        ]
        results = [result for job in jobs for result in job.result()]
    assert len(results) == 40 and {result.status for result in results} == {"fetched"}
    assert server.most_active <= 5


FORKED_FETCH = """
import os, signal, sys
from gallery_snapshot.downloader import DownloadOptions, fetch_batch
from gallery_snapshot.models import Link
url, out = sys.argv[1], sys.argv[2]
hosts = frozenset({"127.0.0.1"})
options = DownloadOptions(out_dir=out, snapshot_id="s", allowed_hosts=hosts, threads=2)
fetch_batch([Link(url=url, id="1", rank=1)], options)  # the parent's pool has threads now
child = os.fork()
if child == 0:
    signal.alarm(20)  # a hang is a failure, not a stuck test
    [result] = fetch_batch([Link(url=url, id="2", rank=2)], options)
    os._exit(0 if result.status == "fetched" else 3)
_, status = os.waitpid(child, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def test_a_forked_child_downloads_on_threads_of_its_own(out_dir: Path) -> None:
    # A fork copies the pool but not its threads: the child's downloads would wait for ever.
    with slow_files(1) as (_, [link]):
        child = subprocess.run(
            [sys.executable, "-c", FORKED_FETCH, link.url, str(out_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert child.returncode == 0, child.stderr[-2000:]
