"""``--out s3://BUCKET/PREFIX`` end to end (issue 11, item 2): the real CLI against a real
Prefect server and a real S3-compatible server (moto, authentication on), counting what each
side was asked for: the bucket's access log and the demo gallery's request log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from urllib.parse import urlsplit

import pytest

from gallery_snapshot.demo_gallery import DemoGallery, bulk_catalogue
from tests.support.bucket_store import (
    IMAGE_KEY,
    assert_images_whole,
    image_keys,
    image_puts,
    list_requests,
    manifests,
    read_object,
    sha256_hex,
    store_objects,
    store_requests,
)
from tests.support.prefect_server import BIN, PrefectServer
from tests.support.s3_server import S3Bucket
from tests.support.snapshot_runs import image_requests, run_args

# Not a speed check: a bound only a hang breaks.
HANG_BOUND = 120


def run_logs(prefect_server: PrefectServer, flow_run_id: str) -> str:
    logs = prefect_server.api(
        "POST",
        "/logs/filter",
        json={"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 200},
    ).json()
    return json.dumps(logs)


def flow_run_id_of(stdout: str) -> str:
    [line] = [line for line in stdout.splitlines() if line.startswith("run page: ")]
    return line.rsplit("/", 1)[1]


def test_demo_into_a_bucket(prefect_server: PrefectServer, s3_bucket: S3Bucket) -> None:
    result = prefect_server.snapshot("demo", "--out", s3_bucket.url, env=s3_bucket.env)
    assert result.returncode == 0, result.stderr[-3000:]

    # 14 images, each under its content's name, each put by exactly one PUT.
    stored = image_keys(s3_bucket)
    assert len(stored) == 14, sorted(stored)
    for key in stored:
        match = IMAGE_KEY.match(key)
        assert match is not None, key
        assert (match[1], match[2]) == (match[4][:2], match[4][2:4])
        assert sha256_hex(read_object(s3_bucket, key)) == match[4]
    assert image_puts(s3_bucket) == dict.fromkeys(stored, 1)

    # The manifest: written, listing the 14 as downloaded, and PUT after every image.
    [manifest] = manifests(s3_bucket)
    snapshot = f"snapshots/{manifest['snapshot_id']}"
    assert manifest["counts"]["downloaded"] == 14
    assert {image["path"] for image in manifest["images"] if image["path"]} == set(stored)
    assert_images_whole(s3_bucket, manifest)
    puts = store_requests(s3_bucket, method="PUT", status=200)
    last_image_put = max(index for index, key in enumerate(puts) if key.startswith("images/"))
    assert puts.index(f"{snapshot}/manifest.json") > last_image_put
    assert puts.count(f"{snapshot}/manifest.json") == 1

    # No lock left behind.
    assert store_objects(s3_bucket, "locks/") == {}

    # The CLI names the bucket's locations.
    assert f"manifest: {s3_bucket.url}/{snapshot}/manifest.json" in result.stdout
    assert f"images:   {s3_bucket.url}/images" in result.stdout
    assert f"page:     {s3_bucket.url}/{snapshot}/index.html" in result.stdout

    # No credential anywhere: output, manifest, page, and what the server keeps of the run
    # (its logs, parameters and artifacts).
    flow_run_id = flow_run_id_of(result.stdout)
    flow_run = prefect_server.api("GET", f"/flow_runs/{flow_run_id}").json()
    logs = run_logs(prefect_server, flow_run_id)
    artifacts = prefect_server.api(
        "POST", "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}}
    ).json()
    assert "snapshot" in logs and artifacts  # (so the next check looks at something)
    kept = "\n".join(
        [
            result.stdout,
            result.stderr,
            json.dumps(manifest),
            logs,
            json.dumps(flow_run["parameters"]),
            json.dumps(artifacts),
            read_object(s3_bucket, f"{snapshot}/index.html").decode(errors="replace"),
        ]
    )
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert s3_bucket.env[name] not in kept, name


def test_a_rerun_reuses_everything_with_a_few_lists(
    prefect_server: PrefectServer, s3_bucket: S3Bucket
) -> None:
    total = 300
    with DemoGallery(bulk_catalogue(total, kilobytes=10)) as gallery:
        argv = run_args(gallery, s3_bucket.url, "--pages", "4")
        env = {**s3_bucket.env, "IMGUR_CLIENT_ID": gallery.client_id}
        first = prefect_server.snapshot(*argv, env=env)
        assert first.returncode == 0, first.stderr[-3000:]
        assert len(image_keys(s3_bucket)) == total
        fetched_once = image_requests(gallery)
        assert len(fetched_once) == total and set(fetched_once.values()) == {1}
        puts_before, lists_before = image_puts(s3_bucket), list_requests(s3_bucket)
        requests_before = len(s3_bucket.requests())

        second = prefect_server.snapshot(*argv, env=env)
        assert second.returncode == 0, second.stderr[-3000:]
        assert image_requests(gallery) == fetched_once  # not one image asked for again
    rerun = s3_bucket.requests()[requests_before:]  # before this test reads anything itself
    lists = list_requests(s3_bucket) - lists_before

    assert image_puts(s3_bucket) == puts_before  # no image PUT
    # No request about a single image to decide reuse (no HEAD, no index read); the only image
    # reads are the contact sheet's thumbnails, at most 64 whatever the snapshot's size.
    about_images = [(verb, path) for verb, path in rerun if "/images/" in path]
    assert [verb for verb, _ in about_images if verb != "GET"] == []
    assert len(about_images) <= 64
    assert [path for _, path in rerun if "/index/" in path] == []
    # O(listing pages): a handful of LISTs for 300 images (access checks, each with one of
    # the bucket's top for a store around snapshots/, locks, the index, the images, and the
    # history's: the previous snapshot's manifest for the changes, history.json checked
    # against the manifests), not one per image.
    assert 2 <= lists <= 14, lists
    _, latest = manifests(s3_bucket)
    assert latest["counts"]["reused"] == total
    assert {image["status"] for image in latest["images"]} == {"reused"}
    assert_images_whole(s3_bucket, latest)


def start_snapshot(
    prefect_server: PrefectServer, argv: list[str], env: dict[str, str]
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(BIN / "gallery-snapshot"), *argv],
        env={**prefect_server.env, **env},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_kill_9_mid_run_then_resume(prefect_server: PrefectServer, s3_bucket: S3Bucket) -> None:
    total, workers = 400, 8
    with DemoGallery(bulk_catalogue(total, kilobytes=10), latency=0.2) as gallery:
        argv = run_args(gallery, s3_bucket.url, "--pages", "5", "--workers", str(workers))
        env = {**s3_bucket.env, "IMGUR_CLIENT_ID": gallery.client_id}
        victim = start_snapshot(prefect_server, argv, env)
        deadline = time.monotonic() + HANG_BOUND
        # Killed once a quarter of the images are stored, while the rest are on their way.
        while len(image_keys(s3_bucket)) < total // 4:
            assert victim.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no progress to interrupt"
            time.sleep(0.05)
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
        stored_at_kill = image_keys(s3_bucket)
        indexed_at_kill = store_objects(s3_bucket, "index/")
        assert total // 4 <= len(stored_at_kill) < total
        assert manifests(s3_bucket) == []  # the killed run wrote no manifest

        resumed = prefect_server.snapshot(*argv, env=env)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        requested = image_requests(gallery)
    puts = image_puts(s3_bucket)

    [manifest] = manifests(s3_bucket)
    counts = manifest["counts"]
    assert counts["downloaded"] + counts["reused"] == total
    assert len(manifest["images"]) == total
    assert_images_whole(s3_bucket, manifest)
    by_path = {urlsplit(image["url"]).path: image for image in manifest["images"]}
    refetched = {path for path, count in requested.items() if count > 1}
    report = (
        f"at the kill: {len(stored_at_kill)} images stored, {len(indexed_at_kill)} indexed; "
        f"then {len(refetched)} fetched again"
    )
    assert len(requested) == total and max(requested.values()) <= 2, report
    # Reused: every image the killed run had stored and indexed, never asked for again.
    reused = {path for path, image in by_path.items() if image["status"] == "reused"}
    assert counts["reused"] >= len(indexed_at_kill), report
    assert all(requested[path] == 1 for path in reused), report
    # Images the killed run had stored whole are not downloaded again either: only those
    # whose PUT was in flight at the kill may be (at most one per concurrent task run).
    stored_then_refetched = {path for path in refetched if by_path[path]["path"] in stored_at_kill}
    assert len(stored_then_refetched) <= workers, report
    # One object per image and nothing else under images/; a key put twice only for an image
    # fetched twice.
    stored = image_keys(s3_bucket)
    assert set(stored) == {image["path"] for image in manifest["images"]}
    assert len(stored) == total
    twice = {key for key, count in puts.items() if count > 1}
    assert twice <= {by_path[path]["path"] for path in refetched}, report
    assert max(puts.values()) <= 2


@pytest.mark.parametrize("problem", ["wrong secret", "missing bucket"])
def test_a_bucket_we_cannot_use_is_one_line_and_exit_1(
    prefect_server: PrefectServer, s3_bucket: S3Bucket, problem: str
) -> None:
    env = dict(s3_bucket.env)
    url = s3_bucket.url
    if problem == "wrong secret":
        env["AWS_SECRET_ACCESS_KEY"] = "not-the-secret-" + env["AWS_SECRET_ACCESS_KEY"][:8]
        expected = f"access to {url} refused"
    else:
        url = f"s3://{s3_bucket.name}-missing/snapshots"
        expected = f"s3://{s3_bucket.name}-missing/snapshots: no such bucket"
    requests_before = len(s3_bucket.server.requests())

    result = prefect_server.snapshot("demo", "--out", url, env=env)

    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("gallery-snapshot: error: ")
    assert expected in lines[0]
    assert env["AWS_SECRET_ACCESS_KEY"] not in result.stderr + result.stdout
    # Nothing written: no object at all, and not one write tried.
    assert s3_bucket.objects() == {}
    after = s3_bucket.server.requests()[requests_before:]
    assert [verb for verb, _ in after if verb in ("PUT", "POST", "DELETE")] == []
    assert after, "the store was never even asked"
