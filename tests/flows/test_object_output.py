"""The flow writing to an object store, through obstore's local backend (``file://``): every
byte of a batch travels from the download task to the validation task in task results, across
processes with the process runner, as it would between Dask workers on different machines."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.snapshot import gallery_snapshot
from gallery_snapshot.config import SnapshotConfig, SourceSpec
from gallery_snapshot.store import is_stored_relpath
from tests.support.content_server import content_servers
from tests.support.demo import DEMO_COUNTS
from tests.support.images import image_bytes
from tests.support.manifests import read_document


def keys_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("runner", ["threads", "processes"])
def test_a_snapshot_into_an_object_store_then_a_rerun_that_reuses_everything(
    tmp_path: Path, runner: str
) -> None:
    bucket = tmp_path / "bucket"
    config = SnapshotConfig(
        demo_gallery=True,
        source=SourceSpec(pages=3),
        out_dir=f"file://{bucket}/snaps",
        runner=runner,
        workers=4,
        attempts=2,
    )
    first_summary = gallery_snapshot(config)
    assert first_summary["manifest"].startswith(f"file://{bucket}/snaps/snapshots/")
    first = read_document(first_summary["manifest"])
    assert first["counts"] == DEMO_COUNTS
    keys = keys_under(bucket / "snaps")
    images = [key for key in keys if key.startswith("images/")]
    assert len(images) == 14 and all(is_stored_relpath(key) for key in images)
    stored = {image["path"] for image in first["images"] if image["status"] == "downloaded"}
    assert stored == set(images)
    assert len([key for key in keys if key.startswith("index/")]) == 14
    assert len([key for key in keys if key.startswith("quarantine/")]) == 2
    snapshot = f"snapshots/{first['snapshot_id']}"
    assert {f"{snapshot}/manifest.json", f"{snapshot}/index.html"} <= set(keys)
    # Nothing of the local store's machinery, and no lock left behind.
    assert not [key for key in keys if key.startswith((".staging", "index.sqlite", "locks/"))]

    second = read_document(gallery_snapshot(config)["manifest"])
    assert second["counts"] == {**DEMO_COUNTS, "downloaded": 0, "reused": 14}
    assert {image["path"] for image in second["images"] if image["status"] == "reused"} == stored
    after = keys_under(bucket / "snaps")
    assert [key for key in after if key.startswith("images/")] == images


def test_the_same_bytes_under_two_urls_are_reused_by_both_without_a_request(
    tmp_path: Path,
) -> None:
    # file:// gives a version tag (ETag) that is no content hash, as some object stores do.
    files: dict[str, bytes] = {}
    with content_servers(1, files) as (server,):
        urls = [f"http://127.0.0.1:{server.port}/{name}.jpg" for name in ("a", "b")]
        files.update(dict.fromkeys(urls, image_bytes(7)))
        links = tmp_path / "urls.txt"
        links.write_text("\n".join(urls) + "\n")
        config = SnapshotConfig(
            source=SourceSpec(kind="urls", urls_file=str(links)),
            allowed_hosts=["127.0.0.1"],
            out_dir=f"file://{tmp_path}/bucket/snaps",
            workers=2,
        )
        first = read_document(gallery_snapshot(config)["manifest"])
        assert first["counts"]["downloaded"] == 2
        assert len(keys_under(tmp_path / "bucket" / "snaps" / "images")) == 1
        requested = len(server.requests)

        second = read_document(gallery_snapshot(config)["manifest"])
        assert second["counts"]["reused"] == 2
        assert len(server.requests) == requested  # no image asked for again
