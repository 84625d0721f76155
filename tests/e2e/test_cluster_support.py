"""The fixtures of issue 11 do what the scale-out tests rely on: a real S3-compatible server that
authenticates, and a real Dask cluster whose workers share nothing local."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import obstore
import pytest
from obstore.exceptions import PermissionDeniedError
from obstore.store import from_url

from tests.support.dask_cluster import DaskCluster, DaskClusterFactory
from tests.support.s3_server import S3Bucket


def test_objects_put_with_obstore_are_listed_and_logged(
    s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in s3_bucket.env.items():  # as the CLI gets them: the environment only
        monkeypatch.setenv(name, value)
    store = from_url(s3_bucket.url, client_options={"allow_http": True})
    obstore.put(store, "images/ab/abc.jpg", b"jpeg bytes")
    obstore.put(store, "snapshots/one/manifest.json", b"{}")

    assert s3_bucket.objects("snapshots/") == {
        "snapshots/images/ab/abc.jpg": 10,
        "snapshots/snapshots/one/manifest.json": 2,
    }
    assert s3_bucket.server.get(s3_bucket.name, "snapshots/images/ab/abc.jpg") == b"jpeg bytes"
    puts = [path for method, path in s3_bucket.requests() if method == "PUT"]
    assert puts == [
        f"/{s3_bucket.name}",  # the fixture's CreateBucket
        f"/{s3_bucket.name}/snapshots/images/ab/abc.jpg",
        f"/{s3_bucket.name}/snapshots/snapshots/one/manifest.json",
    ]


def test_a_wrong_secret_is_refused_with_403_and_writes_nothing(s3_bucket: S3Bucket) -> None:
    env = s3_bucket.env
    store = from_url(
        s3_bucket.url,
        access_key_id=env["AWS_ACCESS_KEY_ID"],
        secret_access_key="not-the-secret",
        endpoint=env["AWS_ENDPOINT_URL"],
        region=env["AWS_REGION"],
        client_options={"allow_http": True},
    )

    with pytest.raises(PermissionDeniedError, match="403 Forbidden"):
        obstore.put(store, "images/ab/abc.jpg", b"jpeg bytes")

    assert s3_bucket.objects() == {}
    assert s3_bucket.requests(status=403) == [
        ("PUT", f"/{s3_bucket.name}/snapshots/images/ab/abc.jpg")
    ]


def test_dask_workers_are_separate_machines(dask_cluster: DaskClusterFactory) -> None:
    cluster = dask_cluster(env={"GALLERY_SNAPSHOT_PROBE": "from the caller"})
    client = cluster.client

    assert cluster.worker_names() == {"worker-0", "worker-1"}
    by_worker = {
        "cwd": client.run(os.getcwd),
        "tmp": client.run(tempfile.gettempdir),
        "home": client.run(os.getenv, "HOME"),
        "prefect": client.run(os.getenv, "PREFECT_HOME"),
    }
    for what, values in by_worker.items():
        assert len(set(values.values())) == 2, f"both workers share their {what}"
    cwds = {Path(cwd) for cwd in by_worker["cwd"].values()}
    assert cwds == {cluster.worker_dir(0), cluster.worker_dir(1)}
    for tmp in by_worker["tmp"].values():  # each TMPDIR inside its own worker's folder only
        assert sum(Path(tmp).is_relative_to(cwd) for cwd in cwds) == 1
    assert Path(tempfile.gettempdir()) not in {Path(tmp) for tmp in by_worker["tmp"].values()}
    assert set(client.run(os.getenv, "GALLERY_SNAPSHOT_PROBE").values()) == {"from the caller"}


def test_a_killed_worker_leaves_and_the_other_runs_tasks(
    dask_cluster: DaskClusterFactory,
) -> None:
    cluster = dask_cluster()
    killed = cluster.worker_pid(0)

    cluster.kill_worker(0)
    cluster.wait_for_departure(0, timeout=20)

    assert cluster.worker_names() == {"worker-1"}
    with pytest.raises(ProcessLookupError):
        os.kill(killed, 0)
    pids = cluster.client.gather([cluster.client.submit(os.getpid, pure=False) for _ in range(4)])
    assert set(pids) == {cluster.worker_pid(1)}
    assert "End worker" not in cluster.worker_logs(0)  # killed, not shut down
    assert "Start worker at" in cluster.worker_logs(1)


def test_a_stopped_cluster_leaves_no_process_behind(tmp_path: Path) -> None:
    with DaskCluster(tmp_path, workers=2, nthreads=1) as cluster:
        pids = cluster.pids()
        assert len(pids) == 3

    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
