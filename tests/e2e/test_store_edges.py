"""The store's edges through the real command: what a served bucket tells browsers, and a run
whose every batch fails."""

from __future__ import annotations

from tests.e2e.conftest import PrefectServer, S3Bucket
from tests.support.bucket_store import manifests, store_objects


def content_types(bucket: S3Bucket) -> dict[str, str]:
    """The ``Content-Type`` of every object of the store, by key (relative to the store)."""
    client = bucket.server.s3_client()
    heads = {
        key: client.head_object(Bucket=bucket.name, Key=f"{bucket.prefix}/{key}")
        for key in store_objects(bucket)
    }
    return {key: str(head["ContentType"]) for key, head in heads.items()}


def test_pages_manifests_and_images_are_served_as_what_they_are(
    prefect_server: PrefectServer, s3_bucket: S3Bucket
) -> None:
    result = prefect_server.snapshot("demo", "--out", s3_bucket.url, env=s3_bucket.env)
    assert result.returncode == 0, result.stderr[-3000:]
    [manifest] = manifests(s3_bucket)
    snapshot = f"snapshots/{manifest['snapshot_id']}"
    types = content_types(s3_bucket)
    assert types[f"{snapshot}/index.html"] == "text/html; charset=utf-8"
    assert types[f"{snapshot}/manifest.json"] == "application/json"
    assert types[f"{snapshot}/contact-sheet.jpg"] == "image/jpeg"
    images = {key: kind for key, kind in types.items() if key.startswith("images/")}
    assert len(images) == 14
    assert set(images.values()) == {"image/jpeg"}
    # A quarantined download is no page, whatever its name or its bytes (one is HTML).
    quarantined = {key: kind for key, kind in types.items() if key.startswith("quarantine/")}
    assert len(quarantined) == 2
    assert set(quarantined.values()) == {"application/octet-stream"}
