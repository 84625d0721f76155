"""One snapshot spread over a real Dask cluster (issue 11, item 3): a ``dask scheduler`` and two
``dask worker`` processes sharing no local folder, as separate machines would be, writing to a
real S3-compatible server; the CLI with ``--runner dask --dask-address``."""

from __future__ import annotations

import os
import subprocess
import time
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import psutil

from gallery_snapshot.batching import plan_batches
from gallery_snapshot.demo_gallery import DemoGallery, bulk_catalogue
from tests.support.bucket_store import (
    assert_images_whole,
    image_keys,
    image_puts,
    manifests,
    store_objects,
)
from tests.support.dask_cluster import DaskCluster, DaskClusterFactory
from tests.support.prefect_server import BIN, PrefectServer
from tests.support.s3_server import S3Bucket
from tests.support.snapshot_runs import image_requests, run_args

# Not a speed check: a bound only a hang breaks.
HANG_BOUND = 180


def start_cluster(
    dask_cluster: DaskClusterFactory, prefect_server: PrefectServer, s3_bucket: S3Bucket
) -> DaskCluster:
    """Two workers that know only the bucket's credentials and the Prefect server's address."""
    return dask_cluster(
        env={**s3_bucket.env, "PREFECT_API_URL": prefect_server.api_url}, workers=2, nthreads=2
    )


def dask_argv(gallery: DemoGallery, s3_bucket: S3Bucket, cluster: DaskCluster) -> list[str]:
    return run_args(
        gallery,
        s3_bucket.url,
        "--pages",
        "4",
        "--runner",
        "dask",
        "--dask-address",
        cluster.address,
        "--workers",
        "8",
    )


def tasks_run_by_worker(cluster: DaskCluster) -> dict[str, Counter[str]]:
    """For each live worker, by name: how many tasks of each Prefect task (``download_images``,
    ``validate_images``) it executed, as the worker itself recorded them."""

    def executed(dask_worker: Any) -> list[str]:
        # Runs on the worker (a nested function travels by value: workers cannot import
        # this test module). The worker's own transition log holds (key, start, finish,
        # stimulus_id, time) entries.
        return [
            str(entry[0])
            for entry in dask_worker.state.log
            if len(entry) >= 3 and entry[1] == "executing" and entry[2] == "memory"
        ]

    names = {
        address: str(info["name"])
        for address, info in cluster.client.scheduler_info()["workers"].items()
    }
    return {
        names[address]: Counter(str(key).rsplit("-", 1)[0] for key in keys)
        for address, keys in cluster.client.run(executed).items()
    }


def connected(pid: int, base_url: str) -> bool:
    """Whether the process ``pid`` (or a child of it) holds a connection to the server at
    ``base_url``: a worker downloading from the gallery."""
    server = urlsplit(base_url)
    parent = psutil.Process(pid)
    return any(
        connection.raddr
        and (connection.raddr.ip, connection.raddr.port) == (server.hostname, server.port)
        and connection.status == psutil.CONN_ESTABLISHED
        for process in [parent, *parent.children(recursive=True)]
        for connection in process.net_connections(kind="tcp")
    )


def downloading(cluster: DaskCluster, index: int) -> bool:
    """Whether that worker is executing a download task right now (a worker between batches
    would lose no work to a kill)."""

    def executing(dask_worker: Any) -> list[str]:
        return [str(task.key) for task in dask_worker.state.executing]

    name = cluster.worker_name(index)
    addresses = [
        address
        for address, info in cluster.client.scheduler_info()["workers"].items()
        if info["name"] == name
    ]
    keys = cluster.client.run(executing, workers=addresses)
    return any(key.startswith("download_images") for found in keys.values() for key in found)


def assert_each_image_stored_once(s3_bucket: S3Bucket, total: int) -> dict[str, Any]:
    """The snapshot's manifest lists ``total`` stored images; the bucket holds exactly one
    object for each and nothing else under images/; return the manifest."""
    [manifest] = manifests(s3_bucket)
    images = manifest["images"]
    assert len(images) == total
    assert {image["status"] for image in images} <= {"downloaded", "reused"}
    stored = image_keys(s3_bucket)
    assert set(stored) == {image["path"] for image in images}
    assert len({image["sha256"] for image in images}) == len(stored) == total
    assert_images_whole(s3_bucket, manifest)
    return manifest


def test_a_snapshot_over_a_two_worker_cluster(
    prefect_server: PrefectServer, s3_bucket: S3Bucket, dask_cluster: DaskClusterFactory
) -> None:
    total = 300
    cluster = start_cluster(dask_cluster, prefect_server, s3_bucket)

    with DemoGallery(bulk_catalogue(total, kilobytes=10), latency=0.05) as gallery:
        result = prefect_server.snapshot(
            *dask_argv(gallery, s3_bucket, cluster),
            env={**s3_bucket.env, "IMGUR_CLIENT_ID": gallery.client_id},
        )
        requested = image_requests(gallery)
    assert result.returncode == 0, result.stderr[-3000:]

    manifest = assert_each_image_stored_once(s3_bucket, total)
    assert manifest["counts"]["downloaded"] == total
    # Each image requested once from the gallery, each key PUT once, nothing left behind.
    assert len(requested) == total and set(requested.values()) == {1}
    assert image_puts(s3_bucket) == dict.fromkeys(image_keys(s3_bucket), 1)
    assert store_objects(s3_bucket, "locks/") == {}
    # The work ran on the cluster, on both of its workers: each worker's own record of the
    # tasks it executed names downloads, and every batch's download and validation ran once
    # in all (the CLI plans the batches from its own cores).
    plan = plan_batches(total, runner="dask", workers=8, cpus=os.cpu_count() or 1)
    ran = tasks_run_by_worker(cluster)
    assert set(ran) == {"worker-0", "worker-1"}
    assert all(runs["download_images"] >= 1 for runs in ran.values()), ran
    expected = {"download_images": len(plan.sizes), "validate_images": len(plan.sizes)}
    assert sum(ran.values(), Counter()) == expected, ran


def test_a_worker_killed_mid_run(
    prefect_server: PrefectServer, s3_bucket: S3Bucket, dask_cluster: DaskClusterFactory
) -> None:
    total = 300
    cluster = start_cluster(dask_cluster, prefect_server, s3_bucket)
    with DemoGallery(bulk_catalogue(total, kilobytes=10), latency=0.2) as gallery:
        run = subprocess.Popen(
            [str(BIN / "gallery-snapshot"), *dask_argv(gallery, s3_bucket, cluster)],
            env={**prefect_server.env, **s3_bucket.env, "IMGUR_CLIENT_ID": gallery.client_id},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            # Killed while it is downloading from the gallery, once a tenth of the images
            # were served: a download task can be executing before its first request (in
            # Prefect's start-up), and a kill then costs nothing.
            deadline = time.monotonic() + HANG_BOUND
            while (
                sum(image_requests(gallery).values()) < total // 10
                or not downloading(cluster, 0)
                or not connected(cluster.worker_pid(0), gallery.base_url)
            ):
                assert run.poll() is None, run.communicate()
                assert time.monotonic() < deadline, "no progress to interrupt"
                time.sleep(0.05)
            served_at_kill = sum(image_requests(gallery).values())
            cluster.kill_worker(0)
            stdout, stderr = run.communicate(timeout=HANG_BOUND)
        finally:
            if run.poll() is None:
                run.kill()
        requested = image_requests(gallery)
    assert served_at_kill < total
    assert run.returncode == 0, stderr[-3000:]

    manifest = assert_each_image_stored_once(s3_bucket, total)
    counts = manifest["counts"]
    assert counts["downloaded"] + counts["reused"] == total
    # Every image requested, none more than twice (once before the kill, once after); some
    # twice: the killed worker was in the middle of a batch, which the other worker redid.
    refetched = {path for path, count in requested.items() if count > 1}
    assert len(requested) == total and max(requested.values()) <= 2
    assert refetched, "the kill cost no work: was worker-0 idle?"
    # Nothing stored twice: an image key put again only for an image fetched again.
    by_path = {urlsplit(image["url"]).path: image["path"] for image in manifest["images"]}
    twice = {key for key, count in image_puts(s3_bucket).items() if count > 1}
    assert twice <= {by_path[path] for path in refetched}
    assert max(image_puts(s3_bucket).values()) <= 2
    assert store_objects(s3_bucket, "locks/") == {}
    assert "worker-0" not in cluster.worker_names()
    survivor = tasks_run_by_worker(cluster)["worker-1"]
    assert survivor["download_images"] >= 1 and survivor["validate_images"] >= 1, survivor
    print(f"{served_at_kill} images served at the kill, {len(refetched)} fetched again")
    assert "run page: " in stdout
