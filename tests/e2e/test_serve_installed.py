"""`python -m deployments.serve` from an installed package: a wheel built from this checkout,
installed into a folder of its own, started from an empty folder (no checkout on the path or
in the working directory), against a Prefect server of its own (serving replaces deployments
of the same names, which the other e2e modules deploy to a work pool)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.prefect_server import PrefectServer, running_server
from tests.support.snapshot_runs import manifests

REPO = Path(__file__).resolve().parents[2]
SHIPPED = ["pyproject.toml", "README.md", "prefect.yaml", "gallery_snapshot", "flows", "tasks"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package as pip installs it, in a folder of its own (built from a copy of the
    checkout, so the build leaves nothing in it)."""
    source, dist = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("dist")
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in SHIPPED:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=ignore)
        else:
            shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "deployments", source / "deployments", symlinks=True, ignore=ignore)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(source)]
    subprocess.run(build, check=True, timeout=300)
    [wheel] = dist.glob("*.whl")
    site = tmp_path_factory.mktemp("site-packages")
    install = [*pip, "install", "--no-deps", "--target", str(site), str(wheel)]
    subprocess.run(install, check=True, timeout=300)
    return site


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    with running_server(tmp_path_factory.mktemp("serve-server-home")) as server:
        yield server


def test_serve_runs_the_deployments_from_an_installed_package(
    installed: Path, own_server: PrefectServer, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    # HOME: relative out_dirs of served runs go under HOME/gallery-snapshot.
    env = {**own_server.env, "PYTHONPATH": str(installed), "HOME": str(tmp_path)}
    where = subprocess.run(
        [
            sys.executable,
            "-c",
            "import deployments.serve as s, flows.snapshot as f; "
            "print(s.__file__); print(f.__file__)",
        ],
        cwd=empty,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()
    assert all(Path(path).is_relative_to(installed) for path in where), where

    log = tmp_path / "serve.log"
    with open(log, "wb") as output:
        serve = subprocess.Popen(
            [sys.executable, "-m", "deployments.serve", "demo"],
            cwd=empty,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 180  # a hang bound, not a speed check
        while True:
            assert serve.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                if requests.get(
                    f"{own_server.api_url}/deployments/name/gallery-snapshot/demo", timeout=5
                ).ok:
                    break
            except requests.RequestException:
                pass
            time.sleep(1)
        out = tmp_path / "gallery-snapshot" / "out"
        config = {"demo_gallery": True, "source": {"pages": 3}, "out_dir": "out"}
        result = own_server.prefect(
            "deployment",
            "run",
            "gallery-snapshot/demo",
            "--param",
            f"config={json.dumps(config)}",
            "--watch",
            timeout=600,
        )
        assert result.returncode == 0, result.stdout + result.stderr + log.read_text()
        assert "COMPLETED" in result.stdout.upper(), result.stdout + log.read_text()
    finally:
        serve.terminate()
        serve.wait(timeout=60)
    [manifest] = manifests(out)
    assert manifest["counts"]["downloaded"] == 14
