"""The listing cache serves retries of one flow run only: a new snapshot reads anew."""

from pathlib import Path

from flows.snapshot import gallery_snapshot
from gallery_snapshot.config import SnapshotConfig, SourceSpec
from gallery_snapshot.demo_gallery import DemoGallery
from tests.support.manifests import read_document


def test_an_edited_urls_file_is_read_anew_by_the_next_snapshot(
    gallery: DemoGallery, tmp_path: Path
) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text(f"{gallery.base_url}/Jpg001.jpg\n")
    config = SnapshotConfig(
        source=SourceSpec(kind="urls", urls_file=str(urls)),
        allowed_hosts=[gallery.image_host],
        out_dir=str(tmp_path / "out"),
    )
    first = read_document(gallery_snapshot(config)["manifest"])
    urls.write_text(f"{gallery.base_url}/Jpg001.jpg\n{gallery.base_url}/Jpg002.jpg\n")
    second = read_document(gallery_snapshot(config)["manifest"])
    assert [image["id"].rsplit("/", 1)[-1] for image in first["images"]] == ["Jpg001.jpg"]
    assert [(image["id"].rsplit("/", 1)[-1], image["status"]) for image in second["images"]] == [
        ("Jpg001.jpg", "reused"),
        ("Jpg002.jpg", "downloaded"),
    ]
