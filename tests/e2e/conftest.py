"""The end-to-end tests' fixtures: a real ``prefect server start`` on loopback, a real
S3-compatible server and real Dask clusters (the helpers behind them are in tests/support)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping

import pytest

from tests.support.dask_cluster import DaskCluster, DaskClusterFactory
from tests.support.prefect_server import PrefectServer, free_port, running_server
from tests.support.s3_server import S3Bucket, S3Server

# A CLI run without PREFECT_API_URL starts the local server on PREFECT_SERVER_API_PORT: never
# the default 4200, where it would find (and write to) the user's own server.
os.environ["PREFECT_SERVER_API_PORT"] = str(free_port())


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    with running_server(tmp_path_factory.mktemp("prefect-server-home")) as server:
        yield server


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's standalone S3 server on loopback, authentication on (see tests/support/s3_server.py);
    its access log is ``<tmp>/moto.log``."""
    with S3Server(tmp_path_factory.mktemp("s3-server") / "moto.log") as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> S3Bucket:
    """A new, empty bucket for this test on the session's S3 server."""
    name = f"test-{uuid.uuid4().hex[:16]}"
    s3_server.create_bucket(name)
    return S3Bucket(name=name, url=f"s3://{name}/snapshots", env=s3_server.env(), server=s3_server)


@pytest.fixture
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskClusterFactory]:
    """A factory: ``dask_cluster(env={...}, workers=2, nthreads=2)`` starts a real scheduler and
    workers (see tests/support/dask_cluster.py), returns the running ``DaskCluster`` once all its
    workers are connected, and stops every cluster it started when the test ends, pass or fail."""
    started: list[DaskCluster] = []

    def start(
        env: Mapping[str, str] | None = None, *, workers: int = 2, nthreads: int = 2
    ) -> DaskCluster:
        cluster = DaskCluster(
            tmp_path_factory.mktemp("dask-cluster"), workers=workers, nthreads=nthreads, env=env
        )
        started.append(cluster)
        cluster.__enter__()
        return cluster

    try:
        yield start
    finally:
        for cluster in started:
            cluster.stop()
